"""A `--responder` plug-in for the e2e tests: answers every comment with `re <its id>`.

One JSON object per comment on stdin, one JSON line per reply on stdout (flushed);
it exits when stdin closes (its `run` is gone).
"""

import json
import sys

for line in sys.stdin:
    try:
        item = json.loads(line)
    except ValueError:
        continue
    print(json.dumps({"reply": f"re {item['id']}", "in_reply_to": item["id"]}), flush=True)
