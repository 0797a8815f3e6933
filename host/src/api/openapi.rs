//! The OpenAPI document, assembled from the handlers' `#[utoipa::path]` annotations while the
//! routes are registered, so every route is in it and none is described twice.
//!
//! JSON bodies name the domain's own types (`tascreed-domain`'s `openapi` feature derives their
//! schemas next to their serde attributes); the tests check rendered jobs and tasks against them.

use std::sync::Arc;

use axum::{Extension, Json};
use serde_json::Value;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, JSON_BODY_LIMIT, UPLOAD_BODY_LIMIT, bans, defines, executors, jobs, metrics, state};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tascreed",
        description = "Reliable task execution with WebAssembly executors: TasCreed-compatible job API. \
                       Errors: {errorCode, errorType, errorMessage}. With http.token set, every non-GET \
                       request needs `Authorization: Bearer <token>`."
    ),
    components(schemas(super::ErrorBody)),
    tags(
        (name = "job", description = "submit, query, update, retry"),
        (name = "state", description = "state lists and admin deletes"),
        (name = "ban", description = "bans and resumes"),
        (name = "define", description = "job defines"),
        (name = "executor", description = "WASM executor components"),
        (name = "ops", description = "metrics, liveness, this document"),
    )
)]
struct ApiDoc;

/// Every route with its documentation; the JSON routes limited to 1 MiB, uploads to 64 MiB.
pub fn api() -> OpenApiRouter<Arc<AppState>> {
    let json_routes = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(jobs::routes())
        .merge(state::routes())
        .merge(bans::routes())
        .merge(defines::routes())
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_LIMIT));
    let uploads = executors::routes().layer(axum::extract::DefaultBodyLimit::max(UPLOAD_BODY_LIMIT));
    json_routes.merge(uploads).merge(metrics::routes()).routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops", responses((status = 200, body = Object)))]
async fn openapi_json(Extension(doc): Extension<Arc<Value>>) -> Json<Value> {
    Json((*doc).clone())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use tascreed_domain::{ExecutorRef, JobDefine, JobRequest, Task, TaskState, build_job};

    fn doc() -> Value {
        let (_, doc) = super::api().split_for_parts();
        serde_json::to_value(doc).expect("document")
    }

    /// `schema`, or the component its `$ref` names.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("foreign $ref {r}"));
                let component = &doc["components"]["schemas"][name];
                assert!(component.is_object(), "$ref {r} names no component");
                component
            }
            None => schema,
        }
    }

    /// The JSON schema of a body: `requestBody` or `responses.<status>` of an operation.
    fn body<'a>(doc: &'a Value, method: &str, path: &str, at: &[&str]) -> &'a Value {
        let mut v = &doc["paths"][path][method];
        for key in at {
            v = &v[*key];
        }
        &v["content"]["application/json"]["schema"]
    }

    fn assert_props(schema: &Value, name: &str, props: &[&str]) {
        for p in props {
            assert!(schema["properties"][p].is_object(), "{name} has no property {p}: {schema}");
        }
    }

    /// Whether `value` fits `schema`: the subset of JSON Schema the generated document uses.
    /// Objects must not carry keys the schema leaves out, so a field the JSON gains without
    /// the schema (or a custom serializer that changes a type) fails.
    fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = resolve(doc, schema);
        if let Some(alternatives) = schema["oneOf"].as_array() {
            let errors: Vec<String> = alternatives.iter().filter_map(|alt| check(doc, alt, value, at).err()).collect();
            return if errors.len() < alternatives.len() { Ok(()) } else { Err(errors.join("; ")) };
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Ok(()),
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let fits = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
        if !fits {
            return Err(format!("{at}: {value} is {actual}, the schema says {types:?}"));
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !value.is_null()
            && !allowed.contains(value)
        {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
        match value {
            Value::String(s) if schema["format"] == "date-time" => {
                let ok = s.len() == 24 && s.as_bytes()[10] == b'T' && s.ends_with('Z');
                if !ok {
                    return Err(format!("{at}: {s} is not an ISO-8601 date-time"));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
                }
            }
            Value::Object(map) => {
                for (key, v) in map {
                    let field = match (&schema["properties"][key], &schema["additionalProperties"]) {
                        (Value::Object(_), _) => &schema["properties"][key],
                        (_, extra @ Value::Object(_)) => extra,
                        _ => return Err(format!("{at}: key {key} is not in the schema {schema}")),
                    };
                    check(doc, field, v, &format!("{at}.{key}"))?;
                }
                for key in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if !map.contains_key(key) {
                        return Err(format!("{at}: required {key} is missing"));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Catches a body regressing to a bare `Object`: every JSON body of the API (but this
    /// document's own) names its shape.
    #[test]
    fn json_bodies_name_their_shape() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            if path == "/api/openapi.json" {
                continue;
            }
            for (method, op) in item.as_object().expect("path item") {
                let bodies =
                    op["responses"].as_object().into_iter().flatten().map(|(_, r)| r).chain([&op["requestBody"]]);
                for b in bodies {
                    let Some(schema) = b["content"]["application/json"]["schema"].as_object() else { continue };
                    let schema = Value::Object(schema.clone());
                    let inner = if schema["type"] == "array" { &schema["items"] } else { &schema };
                    let bare = inner["type"] == "object"
                        && inner.get("properties").is_none()
                        && inner.get("additionalProperties").is_none();
                    assert!(!bare, "{method} {path}: untyped body {schema}");
                }
            }
        }
    }

    #[test]
    fn job_routes_use_the_domain_schemas() {
        let doc = doc();
        let request = body(&doc, "post", "/api/v1/job", &["requestBody"]);
        assert_eq!(request["$ref"], "#/components/schemas/JobRequest");
        let request = resolve(&doc, request);
        assert_props(request, "JobRequest", &["jobName", "trigger", "params", "steps", "after"]);
        assert_eq!(request["properties"]["params"]["additionalProperties"]["type"], "string");
        for path in ["/api/v1/job/update", "/api/v1/job/retry"] {
            assert_eq!(body(&doc, "post", path, &["requestBody"])["$ref"], "#/components/schemas/JobRequest");
        }

        let job = body(&doc, "post", "/api/v1/job", &["responses", "201"]);
        assert_eq!(job["$ref"], "#/components/schemas/Job");
        let job = resolve(&doc, job);
        assert_props(job, "Job", &["jobName", "trigger", "state", "progression", "params", "steps", "createTime"]);
        assert_eq!(job["properties"]["createTime"]["format"], "date-time");
        assert!(job["properties"].get("define").is_none(), "the API leaves the define out");
        let step = resolve(&doc, &job["properties"]["steps"]["items"]);
        assert_props(step, "Step", &["stepName", "stepType", "state", "taskStates", "shardDoneRange"]);
        let task_states = &step["properties"]["taskStates"];
        assert_eq!(task_states["type"], "object", "the API shows taskStates as a map: {task_states}");
        assert_eq!(task_states["additionalProperties"]["$ref"], "#/components/schemas/TaskState");
        assert!(step["properties"].get("shardCrt").is_none() && step["properties"].get("packCrt").is_none());

        let tasks = body(&doc, "get", "/api/v1/job/{jobName}/{trigger}/tasks", &["responses", "200"]);
        assert_eq!(tasks["type"], "array");
        let task = resolve(&doc, &tasks["items"]);
        assert_props(task, "Task", &["taskName", "state", "pickedTimes", "executor", "result", "createTime"]);
        let archived =
            body(&doc, "get", "/api/v1/state/archivedTask/{jobName}/{trigger}/{taskName}", &["responses", "200"]);
        assert_eq!(archived["$ref"], "#/components/schemas/Task");
        let alive = body(&doc, "get", "/api/v1/state/aliveJobs", &["responses", "200"]);
        assert_eq!(alive["items"]["$ref"], "#/components/schemas/Job");

        let validate = body(&doc, "post", "/api/v1/define/validate", &["requestBody"]);
        assert_eq!(validate["$ref"], "#/components/schemas/JobDefine");
        let entry = resolve(&doc, body(&doc, "get", "/api/v1/define/{jobName}", &["responses", "200"]));
        assert_eq!(entry["properties"]["define"]["$ref"], "#/components/schemas/JobDefine");
    }

    /// The JSON the API renders fits the schemas: every key is documented, with its type.
    #[test]
    fn rendered_json_fits_the_schemas() {
        let doc = doc();
        let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
        let define = JobDefine::parse(
            r#"{"jobName": "j", "priority": 3, "params": {"a": "1"}, "duration": 1000, "steps": [
                {"stepName": "s", "stepType": "SHARD", "shardConf": {"shard": 4, "maxTaskCount": 2},
                 "traits": ["CAN_FAIL", "ARCHIVE"], "duration": 10, "params": {"b": "2"}},
                {"stepName": "p", "stepType": "PACK", "packConf": {"size": 10, "start": 0, "end": 99},
                 "dependency": {"doneSteps": ["s"], "phase": 1}}]}"#,
        )
        .expect("define");
        check(&doc, &schema("JobDefine"), &serde_json::to_value(&define).unwrap(), "define").unwrap();
        let request = json!({
            "jobName": "j", "trigger": "t", "priority": 5, "params": {"c": "3"}, "duration": 2000,
            "after": {"timeString": "2021-10-12T00:53:20.000Z"},
            "steps": [{"stepName": "s", "executor": "x", "maxPickTimes": 3, "shardConf": {"maxTaskCount": 3},
                       "traits": {"enable": ["ARCHIVE"], "disable": []}, "after": {"timestamp": 0}}],
        });
        check(&doc, &schema("JobRequest"), &request, "request").unwrap();
        let request = JobRequest::parse(&request.to_string()).expect("request");

        let now = 1_634_000_000_000;
        let mut job = build_job(&define, &request, now).expect("job");
        let created = job.create_tasks(now, 10);
        assert!(!created.tasks.is_empty() && job.steps[0].shard_crt.is_some());
        job.steps[0].task_states.insert(1, TaskState::Error);
        job.steps[0].shard_done_range = Some(Default::default());
        job.steps[1].pack_done_range = Some(Default::default());
        job.mark_deleted(now);
        check(&doc, &schema("Job"), &job.api_json(now), "job").unwrap();

        let mut task: Task = created.tasks[0].clone();
        task.finish(TaskState::Success, Some("done".into()), now);
        task.result.checkpoint = Some("AAE=".into());
        task.result.checkpoint_size = Some(2);
        task.result.progression = Some("100.00%".into());
        task.executor = Some(ExecutorRef { name: "x".into(), sha256: Some("00".into()) });
        (task.node, task.fuel, task.wall_ms, task.peak_memory) = (Some("n".into()), Some(1), Some(2), Some(3));
        (task.picked_times, task.tried_times, task.start_time, task.after) = (1, 1, Some(now), Some(now));
        task.updated_params.insert("k".into(), "v".into());
        task.updated_configs.insert("p".into(), Default::default());
        let rendered = crate::api::task_json(task, now).expect("task");
        for key in ["result", "executor", "shardConf", "traits", "slow", "elapsedMs", "updatedConfigs"] {
            assert!(rendered.get(key).is_some(), "the sample task should show {key}: {rendered}");
        }
        check(&doc, &schema("Task"), &rendered, "task").unwrap();
    }
}
