"""A small async client for the parts of MLflow's REST API that Cadence reads (httpx, injectable transport)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

MAX_PAGES = 10  # of runs per search; older runs than that are not news


class MlflowError(Exception):
    """MLflow answered with an error, or could not be reached."""


@dataclass(frozen=True)
class Run:
    run_id: str
    experiment_id: str
    name: str
    status: str  # RUNNING | SCHEDULED | FINISHED | FAILED | KILLED
    metrics: dict[str, float]
    tags: dict[str, str]


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str
    stage: str
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


class MlflowClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url + "/api/2.0/mlflow/", headers=headers, timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise MlflowError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return {}
        if response.status_code >= 400:
            raise MlflowError(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise MlflowError(f"{method} {path}: not JSON") from exc
        if not isinstance(body, dict):
            raise MlflowError(f"{method} {path}: expected a JSON object, got {type(body).__name__}")
        return body

    async def experiment_ids(self, names: list[str]) -> list[str]:
        """The ids of the named experiments, or of every active experiment when no names are given."""
        if names:
            ids = []
            for name in names:
                found = await self._call("GET", "experiments/get-by-name", params={"experiment_name": name})
                if found.get("experiment"):
                    ids.append(str(found["experiment"]["experiment_id"]))
            return ids
        found = await self._call(
            "POST", "experiments/search", json={"max_results": 1000, "view_type": "ACTIVE_ONLY"}
        )
        return [str(e["experiment_id"]) for e in found.get("experiments", [])]

    async def search_runs(self, experiment_ids: list[str], filter_string: str) -> list[Run]:
        runs: list[Run] = []
        token = None
        for _ in range(MAX_PAGES):
            body: dict[str, Any] = {
                "experiment_ids": experiment_ids,
                "filter": filter_string,
                "max_results": 200,
                "order_by": ["attributes.start_time DESC"],
            }
            if token:
                body["page_token"] = token
            found = await self._call("POST", "runs/search", json=body)
            for raw in found.get("runs", []):
                info, data = raw.get("info", {}), raw.get("data", {})
                runs.append(
                    Run(
                        run_id=str(info.get("run_id") or info.get("run_uuid")),
                        experiment_id=str(info.get("experiment_id", "")),
                        name=str(info.get("run_name") or ""),
                        status=str(info.get("status", "")),
                        metrics={m["key"]: float(m["value"]) for m in data.get("metrics", [])},
                        tags={t["key"]: str(t["value"]) for t in data.get("tags", [])},
                    )
                )
            token = found.get("next_page_token")
            if not token:
                break
        return runs

    async def model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a registered model with its stage, tags and the aliases pointing at it."""
        model = (await self._call("GET", "registered-models/get", params={"name": name})).get(
            "registered_model"
        )
        if not model:
            return []
        aliases: dict[str, list[str]] = {}
        for item in model.get("aliases", []):
            aliases.setdefault(str(item["version"]), []).append(str(item["alias"]))
        quote = '"' if "'" in name else "'"  # MLflow's filter takes either quote; a name may hold one
        found = await self._call(
            "GET",
            "model-versions/search",
            params={"filter": f"name={quote}{name}{quote}", "max_results": 1000},
        )
        return [
            ModelVersion(
                name=name,
                version=str(v["version"]),
                run_id=str(v.get("run_id") or ""),
                stage=str(v.get("current_stage") or "None"),
                aliases=aliases.get(str(v["version"]), []),
                tags={t["key"]: str(t["value"]) for t in v.get("tags", [])},
            )
            for v in found.get("model_versions", [])
        ]
