#!/usr/bin/env bash
# The baseline: retake.tv's published go-live sequence (skill 2.1.2), done the way
# an agent following the skill does it: curl per API call, Xvfb + the published
# ffmpeg command, stream/status polled every 3 s (30 s limit), scrot + thumbnail
# upload, the opening chat message, a fixed 3 s chat poll, a thumbnail every 3 min,
# and a watchdog that restarts ffmpeg once a minute if it is gone (the published
# cron approach), with the platform's crash advice: fresh key, stream/start, ffmpeg.
#
# Where the skill leaves a gap, the fastest correct choice is taken, so the
# comparison favours the baseline: Xvfb is given exactly until its X socket exists
# (the skill starts ffmpeg at once, which races Xvfb), and the watchdog runs at each
# wall-clock minute like `* * * * *` cron, checked on every chat-loop pass.
#
# Env: RETAKE_BASE_URL, RETAKE_ACCESS_TOKEN, USER_DB_ID, AGENT_NAME, DISPLAY_NUM
#      (e.g. 99), WORK (a scratch dir), RETAKE_SKILL_URL (optional).
# Prints "EVENT <name> <epoch seconds> [detail]" lines for bench/run.py.
# Stops on SIGTERM/SIGINT: ffmpeg and Xvfb (by the PIDs it started), then stream/stop.
set -u
API="${RETAKE_BASE_URL:?}"
SKILL_URL="${RETAKE_SKILL_URL:-https://retake.tv/skill.json}"
AUTH="Authorization: Bearer ${RETAKE_ACCESS_TOKEN:?}"
DNUM="${DISPLAY_NUM:-99}"
WORK="${WORK:-$(mktemp -d)}"
event() { echo "EVENT $1 $(date +%s.%N)${2:+ $2}"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

XVFB_PID=""; FFMPEG_PID=""; SLEEP_PID=""
cleanup() {
  [ -n "$SLEEP_PID" ] && kill "$SLEEP_PID" 2>/dev/null
  [ -n "$FFMPEG_PID" ] && kill -INT "$FFMPEG_PID" 2>/dev/null && wait "$FFMPEG_PID" 2>/dev/null
  [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null && wait "$XVFB_PID" 2>/dev/null
  curl -s -X POST -H "$AUTH" "$API/agent/stream/stop" >/dev/null
  event stopped
  exit 0
}
trap cleanup TERM INT
nap() { sleep "$1" & SLEEP_PID=$!; wait "$SLEEP_PID"; SLEEP_PID=""; }

event begin
# Version check (before going live): compare skill.json's version with ours
SKILL=$(curl -s "$SKILL_URL" | json 'd.get("version", "")')
[ "$SKILL" = "2.1.2" ] || echo "skill version changed: $SKILL (re-read skill.md)" >&2
# STEP 1b: confirm verified
if ! curl -s -H "$AUTH" "$API/agent/verification-status" | json 'd["verified"]' | grep -q True; then
  echo "not verified: complete the Twitter/X verification first" >&2; exit 3
fi
# STEP 2: fresh RTMP credentials
fresh_key() {
  RTMP=$(curl -s -X POST -H "$AUTH" "$API/agent/rtmp")
  RTMP_URL=$(echo "$RTMP" | json 'd["url"]')
  RTMP_KEY=$(echo "$RTMP" | json 'd["key"]')
}
fresh_key
# STEP 3: register the session
curl -s -X POST -H "$AUTH" "$API/agent/stream/start" >/dev/null
# STEP 4: virtual display + ffmpeg (the published command)
Xvfb ":$DNUM" -screen 0 1280x720x24 -ac >"$WORK/xvfb.log" 2>&1 &
XVFB_PID=$!
event xvfb_started "$XVFB_PID"
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
for _ in $(seq 1 100); do [ -S "/tmp/.X11-unix/X$DNUM" ] && break; sleep 0.05; done
start_ffmpeg
# STEP 5: confirm live, every 3 s, 30 s limit
live=0
for _ in $(seq 1 10); do
  if curl -s -H "$AUTH" "$API/agent/stream/status" | json 'd["is_live"]' | grep -q True; then live=1; break; fi
  nap 3
done
[ "$live" = 1 ] || { echo "not live after 30 s" >&2; cleanup; }
event live
# STEP 6: the mandatory first thumbnail
thumbnail() {
  scrot -o "$WORK/thumbnail.png"
  curl -s -X POST -H "$AUTH" -F "image=@$WORK/thumbnail.png" "$API/agent/update-thumbnail" >/dev/null
}
thumbnail
event thumbnail
# STEP 7: open chat
curl -s -X POST -H "$AUTH" -H "Content-Type: application/json" \
  -d "{\"message\": \"I'm live. What should we explore today?\", \"destination_user_id\": \"$USER_DB_ID\"}" \
  "$API/agent/stream/chat/send" >/dev/null
# STEP 8: chat loop every 3 s (track the newest _id), thumbnail loop every 3 min,
# and the once-a-minute watchdog
LAST_ID=$(curl -s -H "$AUTH" "$API/agent/stream/comments?userDbId=$USER_DB_ID&limit=50" \
  | json '(d.get("comments") or [{}])[0].get("_id", "")')
next_thumbnail=$(( $(date +%s) + 180 ))
minute=$(( $(date +%s) / 60 ))
while true; do
  nap 3
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
  if [ "$(date +%s)" -ge "$next_thumbnail" ]; then
    next_thumbnail=$(( $(date +%s) + 180 ))
    thumbnail
    event thumbnail
  fi
  if [ "$(( $(date +%s) / 60 ))" != "$minute" ]; then   # cron: * * * * *
    minute=$(( $(date +%s) / 60 ))
    if ! kill -0 "$FFMPEG_PID" 2>/dev/null; then
      wait "$FFMPEG_PID" 2>/dev/null
      event watchdog_restart
      fresh_key
      curl -s -X POST -H "$AUTH" "$API/agent/stream/start" >/dev/null
      start_ffmpeg
    fi
  fi
done
