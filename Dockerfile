# AutoHeal-Nexus image. Three stages: compile the TypeScript with every dependency, install the
# production dependencies alone, and copy both results onto a clean runtime with neither the compiler
# nor the npm cache.
#
# NODE_IMAGE picks the base: Node.js 20.18 or later with npm and a POSIX shell; by default the current
# LTS, Node 24. A mirrored or pinned-by-digest image works the same way:
#   docker build --build-arg NODE_IMAGE=registry.example.org/node:24-bookworm-slim -t autoheal-nexus .
#
# The process runs as uid/gid 1000, not root. The Docker socket belongs to root and the host's
# `docker` group, whose id differs from host to host, so it is granted at run time rather than baked
# in: `docker run --group-add "$(stat -c %g /var/run/docker.sock)" ...` (docker-compose.yml: DOCKER_GID).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# No package needs an install script (ssh2's optional native crypto falls back to JavaScript), and
# skipping them keeps the build free of compilers. The runtime also leaves the optional packages out
# (cpu-features, ssh2's native helper); dockerode's gRPC packages stay, as dockerode loads them at start.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY routes ./routes
RUN npm run build

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="AutoHeal-Nexus" \
      org.opencontainers.image.description="Self-healing service for Docker hosts" \
      org.opencontainers.image.licenses="MIT" \
      autoheal.enable="false"
WORKDIR /app
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    HOST=0.0.0.0 \
    PORT=9095 \
    DATA_DIR=/data/state \
    LOG_FILE=/data/logs/auto_repair.log
# /data is the only place the service writes; mount a volume there to keep state across upgrades.
RUN mkdir -p /data/state /data/logs && chown -R 1000:1000 /data
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER 1000:1000
EXPOSE 9095
# The health check is /readyz: healthy means the service answers AND reaches the Docker engine, so
# `docker ps` shows "unhealthy" when it cannot heal anything (a wrong socket group, a stopped engine,
# a proxy that refuses); its reason is in `docker inspect --format '{{json .State.Health}}'`. The
# container carries autoheal.enable=false: no healer restarts it for that, an operator looks.
# exec form with node itself: the image needs neither a shell nor curl for its health check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 9095) + '/readyz').then(async (r) => { if (!r.ok) console.log(await r.text()); process.exit(r.ok ? 0 : 1); }, (e) => { console.log(String(e)); process.exit(1); })"]
# node as PID 1 receives SIGTERM itself and shuts down gracefully (see src/server.ts).
CMD ["node", "dist/src/server.js"]
