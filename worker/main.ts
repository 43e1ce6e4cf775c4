/** `npm run worker`: reads the configuration (a bad one exits non-zero, listing every problem)
 *  and runs the worker process until SIGTERM or SIGINT (worker-process.ts). */
import { loadConfigOrExit } from "../shared/config.js";
import { runWorkerProcess } from "./worker-process.js";

await runWorkerProcess(loadConfigOrExit());
