# Hub replica and workers image (the same image; the command picks the process).
# scripts/image.sh builds it with podman on a locally made base; with Docker and a registry,
# `docker build .` uses the official Node image: Node.js 24 on Debian 13. For Node 20 on
# Debian 12 (what development machines run): --build-arg BASE=node:20-bookworm-slim --build-arg UWS=
ARG BASE=node:24-trixie-slim

# Build: every dependency (esbuild and tsx are dev dependencies), then the production build: the
# hub, workers and operator scripts bundled into dist/ and the chat page into web/dist.
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The client SDK is an npm workspace: its package.json is part of the install, and the page imports it.
COPY client/package.json ./client/package.json
COPY scripts/patch-postgres.mjs ./scripts/patch-postgres.mjs
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY server ./server
COPY workers ./workers
COPY db ./db
COPY client ./client
COPY web ./web
COPY scripts/build.ts scripts/build-web.ts ./scripts/
RUN node --import tsx scripts/build.ts

# Production dependencies only, installed apart so the build's dev dependencies never reach the runtime.
FROM ${BASE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY client/package.json ./client/package.json
COPY scripts/patch-postgres.mjs ./scripts/patch-postgres.mjs
# UWS: a uWebSockets.js build put in place of the locked one, which has binaries for Node 20
# only. This one has them for Node 20 to 25 but needs glibc 2.38 (Debian 13); empty keeps the
# locked one. Then what production never loads goes: the binaries for other platforms and Node
# ABIs (src/uws.ts loads this one or refuses to start), and TypeScript, installed only as a peer
# of @trpc/server's types.
ARG UWS=@btc-vision/uwebsockets.js@20.57.0
RUN npm ci --omit=dev --no-audit --no-fund \
 && if [ -n "$UWS" ]; then \
      (cd /tmp && npm pack --silent "$UWS" > uws.name) \
      && rm -rf node_modules/uWebSockets.js && mkdir node_modules/uWebSockets.js \
      && tar -xzf "/tmp/$(cat /tmp/uws.name)" -C node_modules/uWebSockets.js --strip-components=1 \
      && rm -f "/tmp/$(cat /tmp/uws.name)" /tmp/uws.name; \
    fi \
 && keep="uws_$(node -p 'process.platform + "_" + process.arch + "_" + process.versions.modules').node" \
 && find node_modules/uWebSockets.js -name 'uws_*.node' ! -path "*/binaries/$keep" ! -path "*/uWebSockets.js/$keep" -delete \
 && rm -rf node_modules/typescript

FROM ${BASE} AS runtime
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG LICENSE=NOASSERTION
LABEL org.opencontainers.image.title="hubbub" \
      org.opencontainers.image.description="Real-time chat server: hub replica (default command) and workers (node dist/workers/main.js)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="${LICENSE}"
ENV NODE_ENV=production \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
# Read at run time by paths relative to their source modules (see scripts/build.ts).
COPY db/migrations ./db/migrations
COPY db/cassandra ./db/cassandra
COPY server/src/auth/password-worker.mjs ./server/src/auth/password-worker.mjs
# The embedded default's PGlite files, the attachments on local disk and the generated
# development keys live in DATA_DIR: writable by the unprivileged user, a volume to keep.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
# 3000: the public port; 9464: /metrics (METRICS_PORT), for Prometheus only; 9465: the workers' /metrics.
EXPOSE 3000 9464 9465
# Readiness, so an orchestrator that only has this check (compose) sends no traffic to a replica
# that cannot reach its database or Redis, or is draining. Kubernetes uses its own probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Compiled JavaScript: no TypeScript loader in production (the workers: node dist/workers/main.js).
CMD ["node", "dist/server/main.js"]
