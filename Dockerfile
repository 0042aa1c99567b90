# syntax=docker/dockerfile:1
# One stage resolves production dependencies; one builds, with the dev dependencies (TypeScript,
# Vite, Preact), the server's JavaScript, the migrated PGlite template a new DATA_DIR is copied from,
# the client and the UI; the last carries the production dependencies, the migrations and the build
# (no sources: bin/darkroom.js runs the build), as a non-root user.

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds the client package and the UI, which need the dev dependencies;
# the build stage below does that.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.client.json tsconfig.server.json ./
COPY src ./src
COPY web ./web
COPY drizzle ./drizzle
# The UI imports the typed client as a package (darkroom/client), so the client is built first.
RUN npm run build:server && npm run build:template && npm run build:client && npm run build:ui

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY drizzle ./drizzle
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/darkroom.js"]
CMD ["serve"]
