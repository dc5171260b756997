#!/usr/bin/env bash
# make_corpora.sh OUTDIR DB... - seeds for the fuzz targets taken from real stores (the fixtures
# that tests/make_fixtures.sh makes with the Duroxide runtime):
#   OUTDIR/history    one file per execution: its history.event_data rows, one per line
#   OUTDIR/work_item  selector byte + NUL-separated fields of the work items queued in the
#                     stores and of the events their histories recorded
# (fuzz_token makes its own seeds from a store: DUROX_FUZZ_MAKE_CORPUS, see fuzz_token.c).
# Files over 16 KiB are skipped. tests/fuzz/corpus/{history,work_item} were made with it.
set -euo pipefail
out=${1:?usage: make_corpora.sh OUTDIR DB...}
shift
mkdir -p "$out/history" "$out/work_item"
n=0
for db in "$@"; do
  tag=$(basename "$db" .db)
  # history: one execution per file
  sqlite3 -readonly "file:$db?mode=ro" \
    "SELECT instance_id || char(9) || execution_id FROM executions ORDER BY instance_id, execution_id" |
  while IFS=$'\t' read -r id ex; do
    f="$out/history/$tag-$(printf '%s-%s' "$id" "$ex" | sha1sum | cut -c1-12)"
    sqlite3 -readonly "file:$db?mode=ro" "SELECT event_data FROM history WHERE instance_id = '${id//\'/\'\'}'
      AND execution_id = $ex ORDER BY event_id" > "$f"
    if [ "$(stat -c %s "$f")" -gt 16384 ]; then rm -f "$f"; fi
  done
  # work items: (selector, instance, name, payload, version) as the encoders take them
  sqlite3 -readonly -separator $'\x1f' "file:$db?mode=ro" "
    SELECT 0, json_extract(work_item, '\$.StartOrchestration.instance'), json_extract(work_item, '\$.StartOrchestration.orchestration'),
      json_extract(work_item, '\$.StartOrchestration.input'), '' FROM orchestrator_queue WHERE work_item LIKE '{\"StartOrchestration\"%'
    UNION ALL SELECT 4, instance_id, json_extract(event_data, '\$.name'), json_extract(event_data, '\$.input'),
      json_extract(event_data, '\$.version') FROM history WHERE event_type = 'OrchestrationStarted' AND length(event_data) < 4096
    UNION ALL SELECT 1, instance_id, json_extract(event_data, '\$.name'), json_extract(event_data, '\$.data'), ''
      FROM history WHERE event_type = 'ExternalEvent' AND length(event_data) < 4096
    UNION ALL SELECT 2, instance_id, json_extract(event_data, '\$.name'), json_extract(event_data, '\$.data'), ''
      FROM history WHERE event_type = 'ExternalEventPersistent'
    UNION ALL SELECT 3, instance_id, json_extract(event_data, '\$.reason'), '', ''
      FROM history WHERE event_type = 'OrchestrationCancelRequested'" |
  while IFS=$'\x1f' read -r sel id name payload version; do
    n=$((n + 1))
    f="$out/work_item/$tag-$(printf '%s|%s|%s|%s|%s' "$sel" "$id" "$name" "$payload" "$version" | sha1sum | cut -c1-12)"
    { printf "\\x$(printf %02x "$sel")"; printf '%s\0%s\0%s\0%s' "$id" "$name" "$payload" "$version"; } > "$f"
  done
done
echo "make_corpora: $(ls "$out/history" | wc -l) history seeds, $(ls "$out/work_item" | wc -l) work item seeds in $out"
