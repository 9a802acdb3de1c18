"""Run tracking on rank 0: a metrics.jsonl file always, MLflow when it is installed.

MLflow's local default here is a SQLite file in the run folder (``sqlite:///.../mlflow.db``,
artifacts beside it): MLflow 3 refuses its old file store, and a SQLite file still needs no
server. A ``tracking_uri`` (an MLflow server, such as a cluster's model-tracking service)
replaces it. A job that continues an earlier one (after a walltime stop or a crash) logs
into the same MLflow run, whose id is kept in the run folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class Tracker:
    """Logs params, metrics and artifacts for one training run (a no-op off rank 0)."""

    def __init__(self, out: Path, experiment: str, tracking_uri: str | None,
                 active: bool, run_name: str | None = None) -> None:
        self.out, self.active = out, active
        self.metrics_file = out / "metrics.jsonl"
        self._mlflow: Any = None
        self.run_id: str | None = None
        if not active:
            return
        try:
            import mlflow
        except ImportError:
            return   # metrics.jsonl still records everything
        uri = tracking_uri or f"sqlite:///{(out / 'mlflow.db').resolve()}"
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(experiment) is None:
            location = None if tracking_uri else (out / "mlartifacts").resolve().as_uri()
            try:
                mlflow.create_experiment(experiment, artifact_location=location)
            except Exception:
                # a sweep's tasks share one experiment: another task may have created it
                # between the look-up and here; anything else shows up just below
                if mlflow.get_experiment_by_name(experiment) is None:
                    raise
        mlflow.set_experiment(experiment)
        id_file = out / "mlflow_run_id"
        previous = id_file.read_text().strip() if id_file.is_file() else None
        run = (mlflow.start_run(run_id=previous) if previous
               else mlflow.start_run(run_name=run_name))
        self.run_id = run.info.run_id
        id_file.write_text(self.run_id + "\n")
        self._mlflow = mlflow

    def params(self, values: Mapping[str, Any]) -> None:
        """Log the run's parameters once (a continuing job finds them already there)."""
        if self._mlflow is not None and not self._mlflow.active_run().data.params:
            self._mlflow.log_params({k: str(v)[:500] for k, v in values.items()})

    def metrics(self, step: int, values: Mapping[str, float]) -> None:
        """Record ``values`` at optimizer step ``step``."""
        if not self.active:
            return
        line = {"step": step, **values, "time": round(time.time(), 3),
                "job_id": os.environ.get("ABCITRAIN_JOB_ID", "")}
        with self.metrics_file.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        if self._mlflow is not None:
            # queued for MLflow's logging thread, which writes them in batches: a write per
            # step into the SQLite store held up training (bench/kit_throughput.py); the
            # line above is the record that is already on disk
            self._mlflow.log_metrics(dict(values), step=step, synchronous=False)

    def artifact_dir(self, path: Path, name: str) -> None:
        """Attach a folder (a checkpoint tag, the exported model) to the run."""
        if self._mlflow is not None:
            self._mlflow.log_artifacts(str(path), artifact_path=name)

    def register(self, model_dir: Path, name: str) -> str | None:
        """Register the exported model under ``name``; returns the new version."""
        if self._mlflow is None or self.run_id is None:
            return None
        self.artifact_dir(model_dir, "model")
        # MLflow 3's register_model wants a "logged model" (its own flavour format); a plain
        # Hugging Face folder is registered as a version whose source is the run's copy.
        client = self._mlflow.MlflowClient()
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name)
        source = f"{self._mlflow.active_run().info.artifact_uri}/model"
        version = client.create_model_version(name, source=source, run_id=self.run_id)
        return str(version.version)

    def end(self, finished: bool) -> None:
        """Close the MLflow run: FINISHED when training completed, else left to resume."""
        if self._mlflow is not None:
            self._mlflow.flush_async_logging()        # every queued metric, before the end
            self._mlflow.end_run(status="FINISHED" if finished else "KILLED")
