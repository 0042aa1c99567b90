# syntax=docker/dockerfile:1
# darkroom runs its TypeScript through tsx (a runtime dependency), so the server needs no build step;
# the web UI does. One stage resolves production dependencies, one builds the UI with the dev
# dependencies (Vite, Preact, TypeScript), and the last carries the production dependencies, the
# sources and the built UI, as a non-root user.

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
COPY tsconfig.json tsconfig.client.json ./
COPY src ./src
COPY web ./web
# The UI imports the typed client as a package (darkroom/client), so the client is built first.
RUN npm run build:client && npm run build:ui

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY drizzle ./drizzle
COPY --from=build /app/dist/web ./dist/web
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/darkroom.js"]
CMD ["serve"]
