#!/usr/bin/env python3
"""The REST calls the MLflow Python client (mlflow 2.x: MlflowClient over RestStore and HttpArtifactRepository)
makes for set_experiment, set_experiment_tag, start_run, log_param, log_metric, log_batch, set_tag, log_input, log_artifact,
list_artifacts, end_run, get_run and search_runs, then log_model (mlflow 2: the model's files under an artifact path and the
`mlflow.log-model.history` tag), register_model, set_registered_model_alias, get_model_version_by_alias and loading models:/NAME@ALIAS, made with `requests` only, against MLFLOW_TRACKING_URI with
MLFLOW_TRACKING_TOKEN as the bearer token (as mlflow.utils.rest_utils does). Bodies are shaped as the client's
protobuf JSON: int64 fields as strings, NaN as "NaN"; GET requests carry their fields as query parameters.
With the argument `log-model-v3` it makes instead the calls mlflow 3's log_model makes (see log_model_v3).
Prints one JSON line of what it read back; exits non-zero at the first call that fails."""
import json
import os
import sys
import tempfile
import time

import requests

URI = os.environ["MLFLOW_TRACKING_URI"].rstrip("/")
HEADERS = {"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"], "User-Agent": "mlflow-python-client"}
API = URI + "/api/2.0/mlflow/"


def call(endpoint, method, body):
    # rest_utils.call_endpoint: GET sends the JSON fields as query parameters, POST as a JSON body.
    if method == "GET":
        res = requests.get(API + endpoint, params=body, headers=HEADERS, timeout=30)
    else:
        res = requests.post(API + endpoint, data=json.dumps(body), headers={**HEADERS, "Content-Type": "application/json"}, timeout=30)
    if res.status_code != 200:
        raise SystemExit(f"{method} {endpoint} -> {res.status_code} {res.text}")
    return res.json()


def expect_error(endpoint, body, code):
    res = requests.post(API + endpoint, data=json.dumps(body), headers=HEADERS, timeout=30)
    payload = res.json()
    if payload.get("error_code") != code:
        raise SystemExit(f"{endpoint}: expected {code}, got {res.status_code} {payload}")


now = lambda: str(int(time.time() * 1000))


def send(method, endpoint, body=None):
    # MLflow 3's logged-models calls put the model id (and a tag key) in the path; PATCH and DELETE carry JSON too.
    res = requests.request(method, API + endpoint, data=None if body is None else json.dumps(body),
                           headers={**HEADERS, "Content-Type": "application/json"}, timeout=30)
    if res.status_code != 200:
        raise SystemExit(f"{method} {endpoint} -> {res.status_code} {res.text}")
    return res.json()


def log_model_v3():
    """mlflow 3: with mlflow.start_run(): mlflow.<flavor>.log_model(model, name="model", registered_model_name=MODEL),
    as mlflow.models.Model.log issues it over RestStore: the run's params (runs/get) → create_logged_model (POST
    logged-models, with source_run_id and the run's params) → log_outputs (POST runs/outputs) → the step's metrics
    linked to the model (metrics/get-history, runs/log-batch with model_id) → log_model_artifacts (PUT each file under
    the model's artifact_uri) → finalize_logged_model READY (PATCH logged-models/<id>) → register_model("models:/<id>")
    (registered-models/create, model-versions/create with model_id, then the mlflow.modelVersions tag on the model)."""
    model_name = os.environ.get("MLFLOW_MODEL_NAME", "py/model3")
    experiment_id = call("experiments/create", "POST", {"name": "logged-models-" + now()})["experiment_id"]
    run_id = call("runs/create", "POST", {"experiment_id": experiment_id, "start_time": now(), "run_name": "v3-run",
                                          "tags": [{"key": "mlflow.user", "value": "alice"}]})["run"]["info"]["run_id"]
    call("runs/log-parameter", "POST", {"run_id": run_id, "key": "alpha", "value": "0.5"})
    call("runs/log-metric", "POST", {"run_id": run_id, "key": "acc", "value": 0.91, "timestamp": now(), "step": "0"})

    # Model.log: params of the active run join the model's own.
    run_params = call("runs/get", "GET", {"run_id": run_id})["run"]["data"]["params"]
    model = send("POST", "logged-models", {
        "experiment_id": experiment_id,
        "name": "model",
        "source_run_id": run_id,
        "params": [{"key": p["key"], "value": p["value"]} for p in run_params],
        "tags": [{"key": "mlflow.user", "value": "alice"}, {"key": "mlflow.source.name", "value": "client.py"},
                 {"key": "mlflow.source.type", "value": "LOCAL"}],
    })["model"]
    model_id = model["info"]["model_id"]
    created_status = model["info"]["status"]
    send("POST", "runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id, "step": "0"}]})
    # log_model_metrics_for_step: the run's metrics at step 0, logged again linked to the model.
    linked = []
    for key in [m["key"] for m in call("runs/get", "GET", {"run_id": run_id})["run"]["data"]["metrics"]]:
        for point in call("metrics/get-history", "GET", {"run_id": run_id, "metric_key": key})["metrics"]:
            if int(point["step"]) == 0:
                linked.append({**point, "run_id": run_id, "model_id": model_id})
    call("runs/log-batch", "POST", {"run_id": run_id, "metrics": linked})

    # log_model_artifacts: HttpArtifactRepository over the model's artifact_uri (mlflow-artifacts:/...).
    root = URI + "/api/2.0/mlflow-artifacts/artifacts/" + model["info"]["artifact_uri"][len("mlflow-artifacts:/"):]
    for path, content in [("MLmodel", f"flavors:\n  python_function: {{}}\n  sklearn: {{}}\nmodel_id: {model_id}\n"
                                      "signature:\n  inputs: '[{\"type\": \"double\", \"name\": \"x\"}]'\n  outputs: '[{\"type\": \"long\"}]'\n"), ("model.pkl", "v3 weights"),
                          ("requirements.txt", "mlflow==3.1.0\n")]:
        requests.put(f"{root}/{path}", data=content.encode(), headers=HEADERS, timeout=30).raise_for_status()
    # _use_logged_model's exit: finalize READY.
    ready = send("PATCH", f"logged-models/{model_id}", {"model_id": model_id, "status": "LOGGED_MODEL_READY"})["model"]

    # _register_model(f"models:/{model_id}", MODEL, tags=None)
    res = requests.post(API + "registered-models/create", data=json.dumps({"name": model_name}), headers=HEADERS, timeout=30)
    if res.status_code != 200 and res.json().get("error_code") != "RESOURCE_ALREADY_EXISTS":
        raise SystemExit(f"registered-models/create -> {res.status_code} {res.text}")
    version = call("model-versions/create", "POST", {"name": model_name, "source": f"models:/{model_id}", "model_id": model_id})["model_version"]
    tags = {t["key"]: t["value"] for t in send("GET", f"logged-models/{model_id}")["model"]["info"].get("tags", [])}
    history = json.loads(tags.get("mlflow.modelVersions", "[]")) + [{"name": version["name"], "version": version["version"]}]
    send("PATCH", f"logged-models/{model_id}/tags", {"tags": [{"key": "mlflow.modelVersions", "value": json.dumps(history)}]})
    call("runs/update", "POST", {"run_id": run_id, "status": "FINISHED", "end_time": now()})

    # mlflow.register_model(f"runs:/{run_id}/model", MODEL) in mlflow 3: the run has no artifact folder "model"
    # (RunsArtifactRepository lists it), so the client finds the run's logged model of that name (runs/get outputs,
    # search_logged_models) and registers models:/<id>: the same files, so the same version.
    folder = requests.get(f"{URI}/api/2.0/mlflow-artifacts/artifacts", params={"path": f"{experiment_id}/{run_id}/artifacts/model"},
                          headers=HEADERS, timeout=30).json().get("files", [])
    run = call("runs/get", "GET", {"run_id": run_id})["run"]
    steps = {o["model_id"]: int(o["step"]) for o in run.get("outputs", {}).get("model_outputs", [])}
    candidates = [m["info"]["model_id"] for m in send("POST", "logged-models/search", {"experiment_ids": [run["info"]["experiment_id"]]})["models"]
                  if m["info"].get("source_run_id") == run_id and m["info"]["name"] == "model"]
    by_name = sorted(candidates, key=lambda m: steps[m], reverse=True)[0] if not folder else None
    again = call("model-versions/create", "POST", {"name": model_name, "source": f"models:/{by_name}", "model_id": by_name})["model_version"]

    # mlflow.search_logged_models / load_model(f"models:/{MODEL}/1"): the download URI, then the files.
    found = send("POST", "logged-models/search", {"experiment_ids": [experiment_id], "filter": "params.alpha = '0.5' AND metrics.acc > 0.9",
                                                   "order_by": [{"field_name": "creation_timestamp", "ascending": False}]})["models"]
    listed = send("GET", f"logged-models/{model_id}/artifacts/directories")["files"]
    download = call("model-versions/get-download-uri", "GET", {"name": model_name, "version": version["version"]})["artifact_uri"]
    pickled = requests.get(f"{URI}/api/2.0/mlflow-artifacts/artifacts/{download[len('mlflow-artifacts:/'):]}/model.pkl", headers=HEADERS, timeout=30).text
    got = send("GET", f"logged-models/{model_id}")["model"]
    history = call("metrics/get-history", "GET", {"run_id": run_id, "metric_key": "acc"})["metrics"]
    print(json.dumps({
        "run_id": run_id,
        "model_id": model_id,
        "created_status": created_status,
        "ready_status": ready["info"]["status"],
        "source_run_id": got["info"].get("source_run_id"),
        "params": {p["key"]: p["value"] for p in got["data"]["params"]},
        "metrics": {m["key"]: m["value"] for m in got["data"]["metrics"]},
        "registrations": got["info"].get("registrations", []),
        "model_versions_tag": json.loads({t["key"]: t["value"] for t in got["info"]["tags"]}["mlflow.modelVersions"]),
        "version": {k: version.get(k) for k in ("name", "version", "run_id", "source", "model_id", "status")},
        "found": [m["info"]["model_id"] for m in found],
        "files": sorted(f["path"] for f in listed),
        "download": download,
        "pickled": pickled,
        "acc_points": len(history),
        "outputs": run.get("outputs", {}).get("model_outputs", []),
        "by_run_name": {"model_id": by_name, "version": again["version"]},
    }))


if len(sys.argv) > 1 and sys.argv[1] == "log-model-v3":
    log_model_v3()
    sys.exit(0)

# mlflow.set_experiment(name): get-by-name, created when it does not exist.
name = "python-client-" + now()
res = requests.get(API + "experiments/get-by-name", params={"experiment_name": name}, headers=HEADERS, timeout=30)
if res.status_code == 404 and res.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST":
    experiment_id = call("experiments/create", "POST", {"name": name})["experiment_id"]
else:
    experiment_id = res.json()["experiment"]["experiment_id"]

# mlflow.set_experiment_tag("team", "vision")
call("experiments/set-experiment-tag", "POST", {"experiment_id": experiment_id, "key": "team", "value": "vision"})
assert {"key": "team", "value": "vision"} in call("experiments/get", "GET", {"experiment_id": experiment_id})["experiment"]["tags"]

# mlflow.start_run(run_name=...): runs/create with the client's system tags.
run = call("runs/create", "POST", {
    "experiment_id": experiment_id,
    "user_id": "alice",
    "start_time": now(),
    "run_name": "py-run",
    "tags": [
        {"key": "mlflow.user", "value": "alice"},
        {"key": "mlflow.source.name", "value": "client.py"},
        {"key": "mlflow.source.type", "value": "LOCAL"},
        {"key": "mlflow.runName", "value": "py-run"},
    ],
})["run"]
run_id = run["info"]["run_id"]
assert run["info"]["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts", run["info"]

# mlflow.log_param / log_metric / set_tag
call("runs/log-parameter", "POST", {"run_id": run_id, "run_uuid": run_id, "key": "lr", "value": "0.01"})
for step, value in enumerate([0.9, 0.7, "NaN"]):
    call("runs/log-metric", "POST", {"run_id": run_id, "run_uuid": run_id, "key": "loss", "value": value, "timestamp": now(), "step": str(step)})
call("runs/set-tag", "POST", {"run_id": run_id, "run_uuid": run_id, "key": "dataset", "value": "v2"})

# mlflow.log_params / log_metrics (log_batch)
call("runs/log-batch", "POST", {
    "run_id": run_id,
    "metrics": [{"key": "acc", "value": 0.97, "timestamp": now(), "step": "3"}],
    "params": [{"key": "epochs", "value": "3"}, {"key": "optimizer", "value": "adam"}],
    "tags": [{"key": "stage", "value": "dev"}],
})

# mlflow.log_input(mlflow.data.from_pandas(df, source="/data/iris.csv"), context="training"): runs/log-inputs with the
# dataset's entity (a pandas dataset's name, 8-character digest, source type and source as JSON, schema and profile).
iris = {"name": "iris", "digest": "5b1ff0d2", "source_type": "local", "source": json.dumps({"uri": "/data/iris.csv"}),
        "schema": json.dumps({"mlflow_colspec": [{"type": "double", "name": "sepal_length", "required": True}]}),
        "profile": json.dumps({"num_rows": 150, "num_elements": 600})}
call("runs/log-inputs", "POST", {"run_id": run_id, "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": iris}]})
inputs = call("runs/get", "GET", {"run_id": run_id})["run"]["inputs"]["dataset_inputs"]
assert inputs == [{"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": iris}], inputs

# MLflow's own errors: a param changed, a batch over the limit.
expect_error("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.02"}, "INVALID_PARAMETER_VALUE")
expect_error("runs/log-batch", {"run_id": run_id, "params": [{"key": f"p{i}", "value": "x"} for i in range(101)]}, "INVALID_PARAMETER_VALUE")

# mlflow.log_artifact(path, artifact_path="plots"): the artifact_uri resolved to the tracking server, PUT per file.
artifact_root = f"{URI}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts"
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.write("hello from python")
with open(f.name, "rb") as data:
    res = requests.put(f"{artifact_root}/plots/{os.path.basename(f.name)}", data=data, headers=HEADERS, timeout=30)
    res.raise_for_status()
# MlflowClient.list_artifacts(run_id, "plots"): GET ?path=<exp>/<run>/artifacts/plots
listed = requests.get(f"{URI}/api/2.0/mlflow-artifacts/artifacts", params={"path": f"{experiment_id}/{run_id}/artifacts/plots"}, headers=HEADERS, timeout=30)
listed.raise_for_status()
files = listed.json()["files"]
downloaded = requests.get(f"{artifact_root}/plots/{files[0]['path']}", headers=HEADERS, timeout=30)
downloaded.raise_for_status()

# mlflow.pyfunc.log_model(artifact_path="model", ...) in mlflow 2: the model's files under model/, then
# MlflowClient._record_logged_model: runs/log-model with the model's tags dict (Model.get_tags_dict()) as model_json.
for file_name, content in [("MLmodel", "flavors:\n  python_function: {}\n"), ("model.pkl", "pickled weights")]:
    requests.put(f"{artifact_root}/model/{file_name}", data=content.encode(), headers=HEADERS, timeout=30).raise_for_status()
model_tags = {"run_id": run_id, "artifact_path": "model", "utc_time_created": "2026-12-06 05:50:00.000000", "model_uuid": "m-1",
              "flavors": {"python_function": {"loader_module": "mlflow.pyfunc.model", "python_version": "3.11.2"}}}
call("runs/log-model", "POST", {"run_id": run_id, "model_json": json.dumps(model_tags)})
history = json.loads({t["key"]: t["value"] for t in call("runs/get", "GET", {"run_id": run_id})["run"]["data"]["tags"]}["mlflow.log-model.history"])
assert history == [model_tags], history

# mlflow.end_run()
call("runs/update", "POST", {"run_id": run_id, "run_uuid": run_id, "status": "FINISHED", "end_time": now()})

# mlflow.register_model(f"runs:/{run_id}/model", MODEL): create the registered model (an existing one is fine),
# resolve the runs:/ URI to the run's artifact_uri (runs/get), create the version, wait until it is READY.
MODEL = os.environ.get("MLFLOW_MODEL_NAME", "py/model")
res = requests.post(API + "registered-models/create", data=json.dumps({"name": MODEL}), headers=HEADERS, timeout=30)
if res.status_code != 200 and res.json().get("error_code") != "RESOURCE_ALREADY_EXISTS":
    raise SystemExit(f"registered-models/create -> {res.status_code} {res.text}")
artifact_uri = call("runs/get", "GET", {"run_id": run_id, "run_uuid": run_id})["run"]["info"]["artifact_uri"]
version = call("model-versions/create", "POST", {"name": MODEL, "source": artifact_uri + "/model", "run_id": run_id})["model_version"]
while version["status"] == "PENDING_REGISTRATION":
    version = call("model-versions/get", "GET", {"name": MODEL, "version": version["version"]})["model_version"]
# MlflowClient.set_registered_model_alias / get_model_version_by_alias
call("registered-models/alias", "POST", {"name": MODEL, "alias": "champion", "version": version["version"]})
by_alias = call("registered-models/alias", "GET", {"name": MODEL, "alias": "champion"})["model_version"]
# mlflow.pyfunc.load_model(f"models:/{MODEL}@champion"): the version by alias, its download URI, then the files.
download = call("model-versions/get-download-uri", "GET", {"name": MODEL, "version": by_alias["version"]})["artifact_uri"]
model_dir = download[len("mlflow-artifacts:/"):]
model_files = requests.get(f"{URI}/api/2.0/mlflow-artifacts/artifacts", params={"path": model_dir}, headers=HEADERS, timeout=30).json()["files"]
pickled = requests.get(f"{URI}/api/2.0/mlflow-artifacts/artifacts/{model_dir}/model.pkl", headers=HEADERS, timeout=30).text

# MlflowClient.get_run / get_metric_history / search_runs
got = call("runs/get", "GET", {"run_id": run_id, "run_uuid": run_id})["run"]
history = call("metrics/get-history", "GET", {"run_id": run_id, "run_uuid": run_id, "metric_key": "loss", "max_results": "25000"})["metrics"]
found = call("runs/search", "POST", {
    "experiment_ids": [experiment_id],
    "filter": "metrics.acc > 0.9 and params.optimizer = 'adam' and attributes.status = 'FINISHED'",
    "run_view_type": "ACTIVE_ONLY",
    "max_results": 1000,
    "order_by": ["metrics.acc DESC"],
})
kv = lambda items: {i["key"]: i["value"] for i in items}
print(json.dumps({
    "run_id": run_id,
    "status": got["info"]["status"],
    "run_name": got["info"]["run_name"],
    "metrics": kv(got["data"]["metrics"]),
    "params": kv(got["data"]["params"]),
    "tags": kv(got["data"]["tags"]),
    "history": [m["value"] for m in history],
    "files": files,
    "artifact": downloaded.text,
    "search": [r["info"]["run_id"] for r in found.get("runs", [])],
    "registered": {"name": version["name"], "version": version["version"], "run_id": version["run_id"], "status": version["status"]},
    "champion": by_alias["version"],
    "model_files": [f["path"] for f in model_files],
    "pickled": pickled,
}))
