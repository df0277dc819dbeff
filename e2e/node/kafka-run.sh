#!/bin/sh
# The entrypoint of the pods tier's Kafka image: one KRaft process configured the way the
# apache/kafka image is (and the operator's in-cluster Kafka renders it): every KAFKA_<NAME>
# variable is the property <name> (lower case, "_" -> ".", "__" -> "_", "___" -> "-"),
# except the JVM ones below. Formats the log dir once (CLUSTER_ID, or a fixed id).
set -eu
props=/tmp/kafka/server.properties
mkdir -p /tmp/kafka
: > "$props"
env | while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_JVM_PERFORMANCE_OPTS|KAFKA_VERSION) continue ;;
    KAFKA_*) ;;
    *) continue ;;
  esac
  key="$(printf '%s' "${name#KAFKA_}" | tr 'A-Z' 'a-z' | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')"
  printf '%s=%s\n' "$key" "$value" >> "$props"
done
cp="/opt/kafka/libs/*"
logdirs="$(sed -n 's/^log\.dirs=//p' "$props")"
if [ ! -f "${logdirs%%,*}/meta.properties" ]; then
  java -cp "$cp" kafka.tools.StorageTool format --ignore-formatted -t "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -c "$props"
fi
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:--Xmx256m -Xms64m} ${KAFKA_OPTS:-} -cp "$cp" kafka.Kafka "$props"
