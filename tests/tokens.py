"""Real client JWTs for tests: generated ES384 and RS384 keys, their JWK Sets, and minting."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://ehr.example.org"


@dataclass(frozen=True)
class SigningKey:
    alg: str
    kid: str
    private: Any

    @classmethod
    def generate(cls, alg: str, kid: str | None = None) -> SigningKey:
        private = ec.generate_private_key(ec.SECP384R1()) if alg == "ES384" else rsa.generate_private_key(65537, 2048)
        return cls(alg, kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", private)

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.ECAlgorithm if self.alg.startswith("ES") else jwt.algorithms.RSAAlgorithm
        public = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": self.alg}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid, "typ": "JWT", **header})


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


def claims(aud: str, now: float, *, iss: str = ISSUER, lifetime: int = 300, **extra: Any) -> dict[str, Any]:
    return {"iss": iss, "aud": aud, "iat": int(now), "exp": int(now) + lifetime, "jti": str(uuid.uuid4()), **extra}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """The signing input of a hand-made token, for the attacks a JWT library refuses to make."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
