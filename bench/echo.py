"""The floor: a bare FastAPI endpoint on the service's own server stack that parses the JSON
body and answers ``{"cards": []}``. What the service costs beyond this is ours to shave."""

from __future__ import annotations

import json
import sys

import uvicorn
from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/cds-services/{service_id}")
async def echo(service_id: str, request: Request) -> dict[str, list[object]]:
    json.loads(await request.body())
    return {"cards": []}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
