#!/usr/bin/env bash
# The baseline: retake.tv's published go-live sequence (skill 2.1.2), done the way
# an agent following the skill does it: curl per API call, Xvfb + the published
# ffmpeg command, stream/status polled every 3 s (30 s limit), scrot + thumbnail
# upload, the opening chat message, a fixed 3 s chat poll, and a watchdog that
# restarts ffmpeg once a minute if it is gone (the published cron approach).
#
# Env: RETAKE_BASE_URL, RETAKE_ACCESS_TOKEN, USER_DB_ID, DISPLAY_NUM (e.g. 99),
#      WORK (a scratch dir). Prints "EVENT <name> <epoch seconds>" lines for bench/run.py.
# Stops on SIGTERM/SIGINT: ffmpeg and Xvfb (by the PIDs it started), then stream/stop.
set -u
API="${RETAKE_BASE_URL:?}"
AUTH="Authorization: Bearer ${RETAKE_ACCESS_TOKEN:?}"
DNUM="${DISPLAY_NUM:-99}"
WORK="${WORK:-$(mktemp -d)}"
event() { echo "EVENT $1 $(date +%s.%N)${2:+ $2}"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

XVFB_PID=""; FFMPEG_PID=""
cleanup() {
  [ -n "$FFMPEG_PID" ] && kill -INT "$FFMPEG_PID" 2>/dev/null && wait "$FFMPEG_PID" 2>/dev/null
  [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null && wait "$XVFB_PID" 2>/dev/null
  curl -s -X POST -H "$AUTH" "$API/agent/stream/stop" >/dev/null
  event stopped
  exit 0
}
trap cleanup TERM INT

event begin
# STEP 2: fresh RTMP credentials
RTMP=$(curl -s -X POST -H "$AUTH" "$API/agent/rtmp")
RTMP_URL=$(echo "$RTMP" | json 'd["url"]')
RTMP_KEY=$(echo "$RTMP" | json 'd["key"]')
# STEP 3: register the session
curl -s -X POST -H "$AUTH" "$API/agent/stream/start" >/dev/null
# STEP 4: virtual display + ffmpeg (the published command)
Xvfb ":$DNUM" -screen 0 1280x720x24 -ac >"$WORK/xvfb.log" 2>&1 &
XVFB_PID=$!
export DISPLAY=":$DNUM"
start_ffmpeg() {
  ffmpeg -nostdin -thread_queue_size 512 \
    -f x11grab -video_size 1280x720 -framerate 30 -i ":$DNUM" \
    -f lavfi -i anullsrc=channel_layout=stereo:sample_rate=44100 \
    -c:v libx264 -preset veryfast -tune zerolatency \
    -b:v 1500k -maxrate 1500k -bufsize 3000k \
    -pix_fmt yuv420p -g 60 \
    -c:a aac -b:a 128k \
    -f flv "$RTMP_URL/$RTMP_KEY" >>"$WORK/ffmpeg.log" 2>&1 &
  FFMPEG_PID=$!
  event ffmpeg_started "$FFMPEG_PID"
}
sleep 1   # the skill's sequence gives Xvfb a moment before ffmpeg grabs it
start_ffmpeg
# STEP 5: confirm live, every 3 s, 30 s limit
live=0
for _ in $(seq 1 10); do
  if curl -s -H "$AUTH" "$API/agent/stream/status" | json 'd["is_live"]' | grep -q True; then live=1; break; fi
  sleep 3
done
[ "$live" = 1 ] || { echo "not live after 30 s" >&2; cleanup; }
event live
# STEP 6: the mandatory first thumbnail
scrot -o "$WORK/thumbnail.png"
curl -s -X POST -H "$AUTH" -F "image=@$WORK/thumbnail.png" "$API/agent/update-thumbnail" >/dev/null
event thumbnail
# STEP 7: open chat
curl -s -X POST -H "$AUTH" -H "Content-Type: application/json" \
  -d "{\"message\": \"I'm live. What should we explore today?\", \"destination_user_id\": \"$USER_DB_ID\"}" \
  "$API/agent/stream/chat/send" >/dev/null
# STEP 8: chat loop every 3 s (track the newest _id) + a once-a-minute watchdog
LAST_ID=$(curl -s -H "$AUTH" "$API/agent/stream/comments?userDbId=$USER_DB_ID&limit=50" \
  | json '(d.get("comments") or [{}])[0].get("_id", "")')
next_watchdog=$(( $(date +%s) + 60 ))
while true; do
  sleep 3 & wait $!
  PAGE=$(curl -s -H "$AUTH" "$API/agent/stream/comments?userDbId=$USER_DB_ID&limit=50")
  NEW=$(echo "$PAGE" | LAST="$LAST_ID" python3 -c '
import json, os, sys
d = json.load(sys.stdin); last = os.environ["LAST"]
new = []
for c in d.get("comments", []):            # newest first
    if c["_id"] == last: break
    new.append(c)
for c in reversed(new):
    print(c["_id"] + "\t" + c["author"].get("fusername", "") + "\t" + c["text"].replace("\t", " ").replace("\n", " "))
')
  while IFS=$'\t' read -r cid who text; do
    [ -z "$cid" ] && continue
    LAST_ID="$cid"
    [ "$who" = "${AGENT_NAME:-}" ] && continue
    curl -s -X POST -H "$AUTH" -H "Content-Type: application/json" \
      -d "{\"message\": \"@$who thanks for: $cid\", \"destination_user_id\": \"$USER_DB_ID\"}" \
      "$API/agent/stream/chat/send" >/dev/null
    event replied "$cid"
  done <<< "$NEW"
  if [ "$(date +%s)" -ge "$next_watchdog" ]; then
    next_watchdog=$(( $(date +%s) + 60 ))
    if ! kill -0 "$FFMPEG_PID" 2>/dev/null; then
      wait "$FFMPEG_PID" 2>/dev/null
      start_ffmpeg
      event watchdog_restart
    fi
  fi
done
