# Hub replica and workers image (the same image; the command picks the process).
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# The client SDK is an npm workspace: its package.json is part of the install.
COPY client/package.json ./client/package.json
RUN npm ci --omit=dev --no-audit --no-fund
COPY server ./server
COPY workers ./workers
COPY db ./db
COPY client ./client
COPY web ./web
COPY scripts/build.ts scripts/build-web.ts ./scripts/
# Its paths map @hubbub/client to the SDK's sources, which the build bundles.
COPY tsconfig.json ./
# The production build, once here: the hub, workers and scripts compiled to dist/ and the chat
# client at / bundled into web/dist (esbuild is a runtime dependency). Files the build reads by
# path at run time (db/migrations, db/cassandra, web/dist, the password worker) stay where they are.
RUN node --import tsx scripts/build.ts
USER node
# 3000: the public port; 9464: /metrics (METRICS_PORT), for Prometheus only; 9465: the workers' /metrics.
EXPOSE 3000 9464 9465
# Compiled JavaScript: no TypeScript loader in production (the workers: node dist/workers/main.js).
CMD ["node", "dist/server/main.js"]
