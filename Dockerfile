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
COPY scripts/build-web.ts ./scripts/build-web.ts
# The chat client at /: bundled once here (esbuild is a runtime dependency), served from web/dist.
RUN node --import tsx scripts/build-web.ts
USER node
EXPOSE 3000
# tsx (a runtime dependency) loads the TypeScript sources directly.
CMD ["node", "--import", "tsx", "server/src/main.ts"]
