# Dockerfile - the edgeflag container image: Debian 12 slim, the server running as the non-root
# user edgeflag, its store in the one volume /var/lib/edgeflag, a health check on /ready.
# The build stage runs scripts/build-install.sh, the script `make install` and tests/pkg/docker.sh
# run (the test executes this file's RUN line with its ARG values), so the image cannot drift
# from what the tests check. Settings come from EDGEFLAG_* variables or a mounted config file
# (docs/configuration.md); docs/deploy.md shows a primary and replicas.
#   docker build -t edgeflag .
#   docker run -d -p 8080:8080 -v edgeflag-data:/var/lib/edgeflag -e EDGEFLAG_AUTH_TOKEN=... edgeflag
# It listens on every interface of the container: without EDGEFLAG_AUTH_TOKEN (or another
# authentication method) anyone who reaches the port can change flags (docs/security.md).
FROM debian:12-slim AS build
ARG BUILD_DIR=/build
ARG STAGE=/stage
WORKDIR /src
COPY . .
# Installs the build packages (scripts/install-deps.sh build), builds, installs under $STAGE and
# lists the Debian packages of the shared libraries the installed programs load.
RUN BUILD="$BUILD_DIR" PREFIX=/usr/local DESTDIR="$STAGE" STRIP=1 RUNTIME_PACKAGES="$STAGE.packages" scripts/build-install.sh

FROM debian:12-slim
COPY --from=build /stage.packages /tmp/runtime-packages
# The runtime libraries the build found, curl for the health check; no compiler, no -dev package.
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages apt-get install -y -qq --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/edgeflag --shell /usr/sbin/nologin edgeflag \
 && install -d -o edgeflag -g edgeflag -m 0750 /var/lib/edgeflag
COPY --from=build /stage/usr/local/ /usr/local/
ENV EDGEFLAG_LISTEN=0.0.0.0:8080 \
    EDGEFLAG_DB=/var/lib/edgeflag/edgeflag.db
VOLUME /var/lib/edgeflag
WORKDIR /var/lib/edgeflag
USER edgeflag
EXPOSE 8080
# /ready: 503 while a replica has no state or lags past --max-staleness, or the store is down.
# Plain HTTP first; a node serving HTTPS answers that with 400, so then HTTPS (-k: the probe talks
# to itself on loopback, where the certificate's name does not apply).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${EDGEFLAG_LISTEN##*:}/ready" || \
      curl -fsSk -o /dev/null "https://127.0.0.1:${EDGEFLAG_LISTEN##*:}/ready" || exit 1
ENTRYPOINT ["edgeflag"]
CMD ["serve"]
