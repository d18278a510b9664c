"""The floor: a bare FastAPI endpoint on the service's own server stack (uvicorn, uvloop,
httptools) that parses the JSON body with orjson and answers ``{"cards": []}``. What the service
costs beyond this is ours to shave."""

from __future__ import annotations

import sys

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

app = FastAPI()
EMPTY = orjson.dumps({"cards": []})


@app.post("/cds-services/{service_id}")
async def echo(service_id: str, request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(EMPTY, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b"{}", media_type="application/json")


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop="uvloop", http="httptools")
