# CPU worker image. Build: docker build -t bge-m3-worker .
# Node 22 LTS; the code also runs on Node 20.18+.
FROM node:22.12.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# .npmrc sets onnxruntime-node-install=skip: the CPU provider ships inside the npm package.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY shared shared
COPY worker worker
COPY producer producer
COPY demo demo
RUN npx tsc -p . && npm prune --omit=dev

FROM node:22.12.0-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY samples samples
USER node
EXPOSE 9464
CMD ["node", "dist/worker/main.js"]
