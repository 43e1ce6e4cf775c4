/*
 * Embedded text corpus for the synthetic test tokenizer.
 *
 * The vocabulary of the test tokenizer is derived from these paragraphs, so
 * the words the tests and demos actually use (meetings, speeches, parliament,
 * transcripts) come out as single pieces. Trade-off: the text is small and
 * hand-written, so frequencies are nowhere near real language statistics; it
 * only needs to be stable, varied and free of third-party copyright.
 */

/** English paragraphs: plenary sessions, committee meetings, transcripts. */
const ENGLISH = `
The committee meeting opened at nine in the morning with a short statement from the chair.
She thanked the members for arriving early and reminded everyone that the transcript of the
session would be published on the public record before the end of the week.

The first speaker asked whether the budget for the regional transport plan had been approved.
The minister replied that the proposal was still under review and that a final decision would
come after the second reading in parliament. Several members interrupted, and the chair called
for order twice before the debate could continue.

During the afternoon session the house discussed the new law on water management. One deputy
argued that small towns had been ignored for many years, while another insisted that the
government had already spent more money on rural services than any previous administration.
The exchange was heated but polite, and both speeches were later quoted in the evening news.

A clerk read the list of amendments aloud. Each amendment was numbered, and the members voted
on them one by one. Amendment number twelve was rejected by a narrow margin; amendment number
fifteen passed with support from three different parties. The clerk then confirmed the results
and asked the technical staff to update the official minutes.

Transcripts of parliamentary debates are useful for researchers, journalists and citizens who
want to understand how decisions are made. They record who spoke, when they spoke and what they
said, including questions, answers, interruptions and points of order. A good transcript keeps
the words of every speaker intact, marks applause and laughter, and notes when the microphone
was switched off.

At the end of the meeting the chair summarised the main agreements. The working group would
meet again next Tuesday, the report on public health would be circulated to all members, and
the vote on the education bill was postponed until the following month. The session was
adjourned at half past six.

In a separate hearing, the committee questioned the director of the national statistics office
about delays in the census. He explained that the new digital forms had caused problems for
older residents, and he promised a clearer timetable. Members asked for written answers, and
he agreed to send a detailed letter before the next hearing.

Speakers often repeat themselves, thank the previous speaker, or refer to earlier statements
made in the chamber. Search systems that work with transcripts must therefore handle long
documents, short questions, names of people and places, dates, numbers and quotations. A
speech may last two minutes or two hours, and the same topic can appear in many sessions over
several years.
`;

/** Spanish and Galician paragraphs, so accented letters and common words are pieces too. */
const IBERIAN = `
La sesión plenaria comenzó a las diez de la mañana. El presidente de la cámara dio la palabra
al primer orador, que habló sobre la reforma de la ley de educación y pidió más recursos para
las escuelas públicas. La diputada de la oposición respondió que el gobierno no había cumplido
sus promesas y exigió una comparecencia urgente del ministro.

En la comisión de hacienda se debatió el presupuesto para el próximo año. Los miembros
presentaron varias enmiendas, y la votación se aplazó hasta la semana siguiente. La
transcripción completa de la reunión estará disponible en el diario de sesiones.

¿Cuándo se publicará el informe? El portavoz contestó que el documento ya estaba terminado y
que se enviaría a todos los grupos parlamentarios antes del viernes. ¡Qué sorpresa! dijo un
diputado, y varios compañeros se rieron.

A sesión do pleno do Parlamento comezou ás dez da mañá. A presidenta deu a palabra ao primeiro
relator, que falou sobre a lei de augas e pediu máis diñeiro para os concellos pequenos. A
deputada da oposición respondeu que o goberno non cumpriu as súas promesas.

Na xuntanza da comisión debateuse o orzamento para o ano que vén. Os membros presentaron
varias emendas e a votación adiouse ata a semana seguinte. A transcrición completa da reunión
estará dispoñible no diario de sesións, e a cidadanía poderá consultala en galego e en
castelán.
`;

/** French and German sentences, so their common accents and words are covered. */
const OTHER = `
La séance est ouverte. Le président donne la parole à la députée, qui pose une question sur le
budget de l'État. Die Sitzung wird um zehn Uhr eröffnet; der Präsident begrüßt die Abgeordneten
und erklärt die Tagesordnung für die öffentliche Anhörung.
`;

/** The full corpus, normalised to single spaces between words by the vocabulary builder. */
export const TOKENIZER_CORPUS: string = [ENGLISH, IBERIAN, OTHER].join("\n");

/**
 * Characters every Latin-script text of the tests must be able to spell out.
 * Beyond printable ASCII and Latin-1, these are the accented letters and
 * typographic marks that survive NFKC and show up in Western European text.
 */
export const EXTRA_LATIN_CHARS: string = "ŒœŸẞ‘’‚“”„–—•€‹›";
