# connector as a cron container: one run per start, exit code tells the outcome.
#   docker build -t connector .
#   docker run --rm -v $PWD/config:/config -v connector-state:/state \
#     -e SF_USERNAME -e SF_PASSWORD -e SF_SECURITY_TOKEN -e VTIGER_USERNAME -e VTIGER_ACCESS_KEY \
#     connector run -c /config/connector.yaml --as-of "$(date -u +%F)"
#   (the image name `connector` is followed by the subcommand; the entrypoint already is `connector --log-json`)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
# the pinned versions (`make lock` regenerates them with pip-tools): the image installs exactly these
COPY requirements/runtime.lock ./requirements/runtime.lock
# connector/ only: the loopback sandboxes and the demo (sandboxes/, with their fixed test credentials) are another
# distribution and stay out of the image (tests/test_runtime_package.py builds this wheel and checks it)
COPY connector ./connector
RUN pip wheel --no-cache-dir --constraint requirements/runtime.lock --wheel-dir /wheels .

FROM python:3.11-slim
# OpenShift runs the image as an arbitrary UID in group 0: the folders connector writes belong to group 0 with
# the owner's rights (g=u), and its own user is in group 0 too. A state that still cannot be written is exit 7
# with a message naming the file, never a traceback.
RUN useradd --create-home --uid 10001 --gid 0 connector && mkdir -p /state /config \
    && chgrp -R 0 /state /home/connector && chmod -R g=u /state /home/connector
COPY --from=build /wheels /wheels
# --no-index: nothing but the wheels the build stage pinned
RUN pip install --no-cache-dir --no-index /wheels/* && rm -rf /wheels
# numeric: Kubernetes' runAsNonRoot cannot check a user name
USER 10001
WORKDIR /state
# JSON logs on stderr for the log shipper. Keep the state in the /state volume: `state: {path: /state/state.sqlite}`
# in the YAML (relative paths resolve against the YAML file, and /config may be mounted read-only).
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["connector", "--log-json"]
CMD ["--help"]
