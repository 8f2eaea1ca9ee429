# zkops in a container, configured like the official zookeeper image (ZOO_* variables).
#
#   python3 -m pip wheel --no-deps -w dist .
#   docker build --build-arg WHEEL=dist/zkops-0.1.0-py3-none-any.whl -t zkops .
#   docker run -e ZOO_MY_ID=1 -e ZOO_SERVERS="server.1=zoo1:2888:3888;2181 ..." zkops
#
# BASE may be any Debian-like image with python3 and its venv module (the tests use a
# debootstrap image built offline). The server needs only the standard library, so the
# wheel is installed without its dependencies and without an index.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ARG WHEEL
COPY ${WHEEL} labs/docker/docker-entrypoint.sh /tmp/zkops/
RUN python3 -m venv /opt/zkops \
 && /opt/zkops/bin/pip install --no-deps --no-index --disable-pip-version-check -q /tmp/zkops/*.whl \
 && install -m 0755 /tmp/zkops/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh \
 && rm -rf /tmp/zkops \
 && mkdir -p /conf /data /datalog
ENV PATH=/opt/zkops/bin:$PATH \
    ZOO_CONF_DIR=/conf ZOO_DATA_DIR=/data ZOO_DATA_LOG_DIR=/datalog ZOO_LOG_DIR=/datalog \
    ZOO_TICK_TIME=2000 ZOO_INIT_LIMIT=5 ZOO_SYNC_LIMIT=2 \
    ZOO_AUTOPURGE_PURGEINTERVAL=0 ZOO_AUTOPURGE_SNAPRETAINCOUNT=3 \
    ZOO_MAX_CLIENT_CNXNS=60 ZOO_STANDALONE_ENABLED=true ZOO_ADMINSERVER_ENABLED=true
WORKDIR /data
VOLUME ["/data", "/datalog"]
EXPOSE 2181 2888 3888
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["zkserver", "start-foreground"]
