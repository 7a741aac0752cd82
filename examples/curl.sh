#!/usr/bin/env sh
# Streams an answer from the OpenAI-compatible API with curl.
#   sh examples/curl.sh [BASE_URL]        (API_KEY for a keyed server)
BASE_URL="${1:-http://127.0.0.1:8080}"
curl --no-buffer --silent --show-error --fail-with-body "$BASE_URL/v1/chat/completions" \
  -H 'content-type: application/json' \
  ${API_KEY:+-H "authorization: Bearer $API_KEY"} \
  -d '{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":32,"stream":true}'
