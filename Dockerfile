# CPU worker image. Build: docker build -t bge-m3-worker:0.1.0 .
# Node 22 LTS, pinned; the code also runs on Node 20.18+.
FROM node:22.12.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# .npmrc sets onnxruntime-node-install=skip: the CPU provider ships inside the npm package.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY shared shared
COPY worker worker
COPY producer producer
RUN npx tsc -p . && npm prune --omit=dev
# The native tokenizer (TOKENIZER_BACKEND, an optional dependency kept by the prune) ships every
# platform's binary in one package, with no install script: keep this platform's (linux-x64-gnu here).
RUN node -e "const fs = require('fs'), d = 'node_modules/tokenizers', keep = 'tokenizers.' + process.platform + '-' + process.arch + '-gnu.node'; for (const f of fs.readdirSync(d)) if (f.endsWith('.node') && f !== keep) fs.rmSync(d + '/' + f); require('./' + d)"

FROM node:22.12.0-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY samples samples
# Fails the build if the native tokenizer binding does not load here (TOKENIZER_BACKEND=auto would fall back to JS).
RUN node -e "if (typeof require('/app/node_modules/tokenizers').Tokenizer.fromString !== 'function') process.exit(1)"
# Numeric uid (the same in Dockerfile.cuda and k8s/) so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 worker && useradd --system --uid 10001 --gid 10001 --no-create-home worker
USER 10001:10001
EXPOSE 9464
# Liveness only: readiness (/health/ready) is for orchestrators. Fails when HTTP_PORT=0.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HTTP_PORT || 9464) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/worker/main.js"]
