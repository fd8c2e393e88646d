#!/usr/bin/env bash
# PostgreSQL's archive_command: copies one finished WAL segment into the archive, atomically.
#   archive_command = '/opt/hubbub/scripts/backup/pg-archive-wal.sh %p %f /backups/hubbub/wal'
# Exit 0 only once the file is safely in place: PostgreSQL keeps the segment (and retries) until
# then. A segment already archived with the same content is fine (a retry after a crash);
# different content under the same name is refused, never overwritten.
set -euo pipefail
src="$1" name="$2" dir="$3"
mkdir -p "$dir"
dest="$dir/$name"
if [ -e "$dest" ]; then
  cmp -s "$src" "$dest" && exit 0
  echo "pg-archive-wal: $dest exists with other content; refusing to overwrite" >&2
  exit 1
fi
tmp="$dir/.$name.$$.tmp"
cp "$src" "$tmp"
sync "$tmp"
mv "$tmp" "$dest"
