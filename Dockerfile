# syntax=docker/dockerfile:1
# llm-chat-server in a container: built in one stage, run as the unprivileged `node` user in the
# next. The model is mounted read-only; conversations go to the /data volume (SQLite) or Redis.
#   docker build -t llm-chat-server .
#   docker run -p 8080:8080 -v /srv/models:/models:ro -v llm-chat-data:/data \
#     -e MODEL_PATH=/models/gpt-oss-20b-Q4_K_M.gguf -e API_KEYS_FILE=/run/secrets/keys.json \
#     -v /srv/keys.json:/run/secrets/keys.json:ro llm-chat-server
# (CPU inference; for CUDA build FROM an nvidia/cuda runtime image with Node 20 instead.)

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    STORE=sqlite:/data/store.sqlite
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/web-demo/dist ./web-demo/dist
COPY --from=build --chown=node:node /app/models ./models
RUN mkdir /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# Ready once the model is loaded and the store answers (a big model takes a while to load).
HEALTHCHECK --interval=10s --timeout=3s --start-period=180s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
STOPSIGNAL SIGTERM
CMD ["node", "dist/server/main.js"]
