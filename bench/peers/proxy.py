"""A seed-style Ollama key proxy, for comparison in bench/run only: FastAPI
on uvicorn, the key looked up in a dict, the request forwarded with httpx
and the answer streamed back as it arrives. No quotas, no accounting: the
least a Python proxy of this design does per request.

    BENCH_UPSTREAM=http://127.0.0.1:PORT BENCH_KEYS=keys.txt \
        /usr/bin/python3 -m uvicorn --app-dir bench/peers proxy:app
"""
import os

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

UPSTREAM = os.environ["BENCH_UPSTREAM"]
with open(os.environ["BENCH_KEYS"]) as f:
    KEYS = {line.strip(): n for n, line in enumerate(f) if line.strip()}

app = FastAPI()
client = httpx.AsyncClient(base_url=UPSTREAM, timeout=None,
                           limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))


@app.api_route("/api/{path:path}", methods=["GET", "POST"])
async def proxy(path: str, request: Request):
    auth = request.headers.get("authorization", "")
    key = auth[7:] if auth.startswith("Bearer ") else ""
    if key not in KEYS:
        return JSONResponse({"error": "invalid api key"}, status_code=401)
    upstream = client.build_request(request.method, "/api/" + path,
                                    params=request.query_params,
                                    content=await request.body(),
                                    headers={"content-type": "application/json"})
    r = await client.send(upstream, stream=True)
    return StreamingResponse(r.aiter_raw(), status_code=r.status_code,
                             media_type=r.headers.get("content-type"),
                             background=BackgroundTask(r.aclose))
