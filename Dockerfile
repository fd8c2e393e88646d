# Hub replica and workers image (the same image; the command picks the process).
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY server ./server
COPY workers ./workers
COPY db ./db
COPY client ./client
USER node
EXPOSE 3000
# tsx (a runtime dependency) loads the TypeScript sources directly.
CMD ["node", "--import", "tsx", "server/src/main.ts"]
