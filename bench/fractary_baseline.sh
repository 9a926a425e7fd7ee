#!/usr/bin/env bash
# The baseline of bench_batch_closed.py: what fractary-logs' script chain does (collect,
# compress, metadata, index), one issue at a time and one process chain per file:
# find, gzip -9, sha256sum, cp to the store, jq to add an entry to a JSON index.
#
# usage: fractary_baseline.sh LOGS_DIR STORE_DIR ISSUE...
set -euo pipefail
for tool in find gzip sha256sum jq stat; do
    if ! command -v "$tool" > /dev/null; then
        echo "fractary_baseline.sh needs $tool: install it (apt-get install -y $tool)" >&2
        exit 2
    fi
done
logs=$1
store=$2
shift 2
index="$logs/.baseline-index.json"
[ -f "$index" ] || echo '{"schema_version": 1, "archives": []}' > "$index"
for issue in "$@"; do
    # collect: the issue's logs, directly in each type folder
    list="$logs/.collect-$issue"
    find "$logs/sessions" "$logs/builds" "$logs/deployments" "$logs/debug" -maxdepth 1 \
        -type f \( -name "session-$issue-*" -o -name "$issue-*" \) 2> /dev/null \
        | sort > "$list" || true  # (a type folder that does not exist)
    while IFS= read -r file; do
        size=$(stat -c %s "$file")
        # compress: gzip -9 above 1 MiB
        if [ "$size" -gt 1048576 ]; then
            gzip -9 -c "$file" > "$file.gz"
            stored="$file.gz"
        else
            stored="$file"
        fi
        # metadata: checksum and size of what is stored
        sum=$(sha256sum "$stored" | cut -d' ' -f1)
        stored_size=$(stat -c %s "$stored")
        dest="$store/archive/logs/$issue/$(basename "$stored")"
        mkdir -p "$(dirname "$dest")"
        cp "$stored" "$dest"
        # index: one entry added with jq, written through a temp file
        jq --argjson issue "$issue" --arg path "$file" --arg remote "$dest" \
            --arg sum "sha256:$sum" --argjson size "$stored_size" --argjson orig "$size" \
            --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
            '.archives += [{issue_number: $issue, local_path: $path, remote_path: $remote,
                            checksum: $sum, size_bytes: $size, original_size_bytes: $orig,
                            archived: $at}] | .last_updated = $at' \
            "$index" > "$index.tmp"
        mv "$index.tmp" "$index"
        rm -f "$file" "$stored"
    done < "$list"
    rm -f "$list"
done
