#!/usr/bin/env python3
"""Writes src/api/openapi.json, the Swagger 2.0 document lbha serves at /v2/specification.
Run after changing a route or a model: python3 tools/gen_openapi.py (router tests check the result)."""
import json, os

def ref(n): return {"$ref": f"#/definitions/{n}"}
S = {"type": "string"}
I = {"type": "integer"}
NAME = {"type": "string", "pattern": "^[A-Za-z0-9-_.:]+$", "x-nullable": False}
TOGGLE = {"type": "string", "enum": ["enabled", "disabled"]}
MS = {"type": "integer", "minimum": 0, "x-nullable": True}
def obj(props, required=(), extra=False):
    o = {"type": "object", "properties": props, "additionalProperties": extra}
    if required: o["required"] = list(required)
    return o

conn_mode = {"type": "string", "enum": ["httpclose", "http-server-close", "http-keep-alive"]}
mode = {"type": "string", "enum": ["http", "tcp"]}
balance = obj({"algorithm": {"type": "string", "enum": ["roundrobin", "static-rr", "leastconn", "first", "source", "uri", "url_param", "hdr", "random"]},
               "hdr_name": S, "url_param": S, "uri_len": {"type": "integer", "minimum": 0}, "uri_depth": {"type": "integer", "minimum": 0},
               "uri_whole": {"type": "boolean"}, "random_draws": {"type": "integer", "minimum": 1}}, ["algorithm"])
httpchk = obj({"method": {"type": "string", "enum": ["HEAD", "PUT", "POST", "GET", "TRACE", "PATCH", "DELETE", "CONNECT", "OPTIONS"]},
               "uri": {"type": "string", "pattern": "^[^\\s]+$"}, "version": {"type": "string", "pattern": "^[^\\s]+$"}})
default_server = obj({k: MS for k in ["inter", "fastinter", "downinter"]} | {"rise": {"type": "integer", "minimum": 1}, "fall": {"type": "integer", "minimum": 1}})
enabled_obj = obj({"enabled": TOGGLE}, ["enabled"])
u32pos = {"type": "integer", "minimum": 1, "maximum": 4294967295}

defs = {
 "error": obj({"code": I, "message": S}, ["code", "message"], extra=True),
 "backend": obj({"name": NAME, "mode": mode, "balance": balance,
                 "hash_type": obj({"method": {"type": "string", "enum": ["map-based", "consistent"]}}),
                 "adv_check": {"type": "string", "enum": ["httpchk"]}, "httpchk_params": httpchk,
                 "forwardfor": enabled_obj, "http_connection_mode": conn_mode, "redispatch": enabled_obj,
                 "retries": {"type": "integer", "minimum": 0, "maximum": 1000000}, "allbackups": TOGGLE,
                 "connect_timeout": MS, "server_timeout": MS, "tunnel_timeout": MS, "check_timeout": MS,
                 "http_request_timeout": MS, "http_keep_alive_timeout": MS, "default_server": default_server}, ["name"]),
 "server": obj({"name": NAME, "address": {"type": "string", "pattern": "^[^\\s]+$"}, "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "check": TOGGLE, "backup": TOGGLE, "maintenance": TOGGLE, "weight": {"type": "integer", "minimum": 0, "maximum": 256},
                "maxconn": u32pos, "inter": MS, "fastinter": MS, "downinter": MS, "rise": {"type": "integer", "minimum": 1}, "fall": {"type": "integer", "minimum": 1},
                "health_check_port": {"type": "integer", "minimum": 1, "maximum": 65535}, "health_check_address": {"type": "string", "format": "ipv4"}},
               ["name", "address", "port"]),
 "frontend": obj({"name": NAME, "mode": mode, "default_backend": NAME, "http_connection_mode": conn_mode, "maxconn": u32pos,
                  "forwardfor": enabled_obj, "client_timeout": MS, "http_request_timeout": MS, "http_keep_alive_timeout": MS}, ["name"]),
 "bind": obj({"name": {"type": "string", "pattern": "^[^\\s]+$"}, "address": {"type": "string", "format": "ipv4"},
              "port": {"type": "integer", "minimum": 1, "maximum": 65535}}, ["port"]),
 "backend_switching_rule": obj({"index": I, "name": NAME, "cond": {"type": "string", "enum": ["if", "unless"]}, "cond_test": S}, ["index", "name"]),
 "acl": obj({"index": I, "acl_name": NAME, "criterion": {"type": "string", "pattern": "^[^\\s]+$"}, "value": S}, ["index", "acl_name", "criterion"]),
 "http_request_rule": obj({"index": I, "type": {"type": "string", "enum": ["deny", "redirect", "set-header", "add-header", "del-header", "return"]},
                           "cond": {"type": "string", "enum": ["if", "unless"]}, "cond_test": S,
                           "deny_status": {"type": "integer", "minimum": 200, "maximum": 599},
                           "redir_type": {"type": "string", "enum": ["location", "prefix"]}, "redir_value": S,
                           "redir_code": {"type": "integer", "enum": [301, 302, 303, 307, 308]},
                           "hdr_name": S, "hdr_format": S,
                           "return_status_code": {"type": "integer", "minimum": 200, "maximum": 599},
                           "return_content": S, "return_content_type": S, "return_content_format": {"type": "string", "enum": ["string"]},
                           "return_hdrs": {"type": "array", "items": obj({"name": S, "fmt": S}, ["name", "fmt"])}}, ["index", "type"]),
 "defaults": obj({"name": S, "mode": mode, "balance": balance, "hash_type": obj({"method": {"type": "string", "enum": ["map-based", "consistent"]}}),
                  "adv_check": {"type": "string", "enum": ["httpchk"]}, "httpchk_params": httpchk, "forwardfor": enabled_obj,
                  "http_connection_mode": conn_mode, "redispatch": enabled_obj, "retries": {"type": "integer", "minimum": 0, "maximum": 1000000},
                  "allbackups": TOGGLE, "maxconn": u32pos, "default_backend": NAME,
                  **{f"{k}_timeout": MS for k in ["client", "server", "connect", "http_request", "http_keep_alive", "tunnel", "check"]},
                  "default_server": default_server}),
 "global": obj({"maxconn": u32pos, "nbthread": u32pos, "spread_checks": {"type": "integer", "minimum": 0, "maximum": 50}, "hard_stop_after": MS}),
 "transaction": obj({"_version": I, "id": {"type": "string", "pattern": "^[^\\s]+$"}, "status": {"type": "string", "enum": ["failed", "outdated", "in_progress", "success"]}}),
 "reload": obj({"id": S, "status": {"type": "string", "enum": ["failed", "in_progress", "succeeded"]}, "reload_timestamp": I, "response": S}),
 "runtime_server": obj({"name": {"type": "string", "readOnly": True}, "id": {"type": "string", "readOnly": True},
                        "address": {"type": "string", "readOnly": True}, "port": {"type": "integer", "readOnly": True},
                        "admin_state": {"type": "string", "enum": ["ready", "maint", "drain"]},
                        "operational_state": {"type": "string", "enum": ["up", "down", "stopping"]},
                        "weight": {"type": "integer", "minimum": 0, "maximum": 256, "description": "lbha extension (as in v3): applied at once"}}),
 "native_stats": {"type": "array", "items": obj({"runtimeAPI": S, "error": S, "stats": {"type": "array", "items": obj({"type": {"type": "string", "enum": ["frontend", "backend", "server"]}, "name": S, "backend_name": S, "stats": {"type": "object"}}, extra=True)}}, extra=True)},
 "info": {"type": "object", "properties": {"api": {"type": "object"}, "system": {"type": "object"}}},
 "endpoints": {"type": "array", "items": obj({"url": S, "title": S, "description": S})},
}

P = {
 "transaction_id": {"name": "transaction_id", "in": "query", "type": "string", "description": "Read or write inside this transaction"},
 "version": {"name": "version", "in": "query", "type": "integer", "description": "Configuration version the write is based on (or use transaction_id)"},
 "force_reload": {"name": "force_reload", "in": "query", "type": "boolean", "default": False},
 "backend": {"name": "backend", "in": "query", "type": "string"},
 "frontend": {"name": "frontend", "in": "query", "type": "string"},
 "frontend_req": {"name": "frontend", "in": "query", "type": "string", "required": True},
 "parent_type": {"name": "parent_type", "in": "query", "type": "string", "enum": ["frontend", "backend"], "required": True},
 "parent_type_opt": {"name": "parent_type", "in": "query", "type": "string", "enum": ["frontend", "backend"]},
 "parent_name": {"name": "parent_name", "in": "query", "type": "string", "required": True},
 "parent_name_opt": {"name": "parent_name", "in": "query", "type": "string"},
 "name": {"name": "name", "in": "path", "type": "string", "required": True},
 "index": {"name": "index", "in": "path", "type": "integer", "required": True},
 "id": {"name": "id", "in": "path", "type": "string", "required": True},
}
def err(desc): return {"description": desc, "schema": ref("error")}
E = {"400": err("Bad request"), "401": err("Unauthorized"), "404": err("Not found"), "409": err("Conflict (version mismatch, exists)"),
     "406": err("Transaction cannot be committed"), "422": err("Schema validation"), "429": err("Too many transactions"), "500": err("Internal error"),
     "default": err("Error")}
def wrapped(schema): return {"type": "object", "properties": {"_version": I, "data": schema}, "required": ["_version", "data"]}
def body(model): return {"name": "data", "in": "body", "required": True, "schema": ref(model)}
HDR = {"Configuration-Version": {"type": "integer"}}
def ok(desc, schema=None, code="200", reload=False):
    r = {"description": desc, "headers": dict(HDR)}
    if reload: r["headers"]["Reload-ID"] = {"type": "string"}
    if schema is not None: r["schema"] = schema
    return {code: r}
def op(opid, summary, params, responses, tags):
    return {"operationId": opid, "summary": summary, "parameters": params, "responses": {**responses, **{k: v for k, v in E.items() if k not in responses}}, "tags": tags}

paths = {}
def add(path, method, o): paths.setdefault(path, {})[method] = o
C = "/services/haproxy/configuration"
W = [P["transaction_id"], P["version"], P["force_reload"]]
def crud(seg, model, scope_list, scope_item, key, tag, indexed=False):
    coll, item = f"{C}/{seg}", f"{C}/{seg}/{{{key}}}"
    arr = {"type": "array", "items": ref(model)}
    add(coll, "get", op(f"get{tag}s", f"List {seg}", scope_list + [P["transaction_id"]], ok("List", wrapped(arr)), [tag]))
    writes = {**ok("Created", ref(model), "201"), **ok("Accepted: committed and reloaded", ref(model), "202", True)}
    add(coll, "post", op(f"create{tag}", f"Add to {seg}", scope_item + [body(model)] + W, writes, [tag]))
    kp = P["index"] if indexed else P["name"]
    add(item, "get", op(f"get{tag}", f"One of {seg}", [kp] + scope_item + [P["transaction_id"]], ok("One", wrapped(ref(model))), [tag]))
    add(item, "put", op(f"replace{tag}", f"Replace one of {seg}", [kp] + scope_item + [body(model)] + W,
                        {**ok("Replaced", ref(model)), **ok("Accepted", ref(model), "202", True)}, [tag]))
    add(item, "delete", op(f"delete{tag}", f"Delete one of {seg}", [kp] + scope_item + W,
                           {"204": {"description": "Deleted", "headers": dict(HDR)}, **ok("Accepted", None, "202", True)}, [tag]))

crud("backends", "backend", [], [], "name", "Backend")
crud("frontends", "frontend", [], [], "name", "Frontend")
sv = [P["backend"], P["parent_type_opt"], P["parent_name_opt"]]
crud("servers", "server", sv, sv, "name", "Server")
bd = [P["frontend"], P["parent_type_opt"], P["parent_name_opt"]]
crud("binds", "bind", bd, bd, "name", "Bind")
crud("backend_switching_rules", "backend_switching_rule", [P["frontend_req"]], [P["frontend_req"]], "index", "BackendSwitchingRule", True)
pt = [P["parent_type"], P["parent_name"]]
crud("acls", "acl", pt, pt, "index", "Acl", True)
crud("http_request_rules", "http_request_rule", pt, pt, "index", "HTTPRequestRule", True)
for seg, model, tag in [("defaults", "defaults", "Defaults"), ("global", "global", "Global")]:
    add(f"{C}/{seg}", "get", op(f"get{tag}", f"Get {seg}", [P["transaction_id"]], ok("Section", wrapped(ref(model))), [tag]))
    add(f"{C}/{seg}", "put", op(f"replace{tag}", f"Replace {seg}", [body(model)] + W, {**ok("Replaced", ref(model)), **ok("Accepted", ref(model), "202", True)}, [tag]))
add(f"{C}/version", "get", op("getConfigurationVersion", "Configuration version", [P["transaction_id"]], ok("Version", I), ["Configuration"]))
T = "/services/haproxy/transactions"
add(T, "get", op("getTransactions", "List transactions", [{"name": "status", "in": "query", "type": "string", "enum": ["failed", "in_progress", "outdated", "success"]}], ok("List", {"type": "array", "items": ref("transaction")}), ["Transactions"]))
add(T, "post", op("startTransaction", "Start a transaction", [{**P["version"], "required": True}], ok("Created", ref("transaction"), "201"), ["Transactions"]))
add(T + "/{id}", "get", op("getTransaction", "One transaction", [P["id"]], ok("Transaction", ref("transaction")), ["Transactions"]))
add(T + "/{id}", "put", op("commitTransaction", "Commit: validate, write lbha.toml atomically, reload", [P["id"], P["force_reload"]],
                           {**ok("Committed, reloaded", ref("transaction")), **ok("Committed, reloaded", ref("transaction"), "202", True)}, ["Transactions"]))
add(T + "/{id}", "delete", op("deleteTransaction", "Delete a transaction", [P["id"]], {"204": {"description": "Deleted", "headers": dict(HDR)}}, ["Transactions"]))
R = "/services/haproxy/reloads"
add(R, "get", op("getReloads", "Recent reloads", [], ok("List", {"type": "array", "items": ref("reload")}), ["Reloads"]))
add(R + "/{id}", "get", op("getReload", "One reload", [P["id"]], ok("Reload", ref("reload")), ["Reloads"]))
RS = "/services/haproxy/runtime/servers"
breq = {**P["backend"], "required": True}
add(RS, "get", op("getRuntimeServers", "Servers' runtime state", [breq], ok("List", {"type": "array", "items": ref("runtime_server")}), ["Runtime"]))
add(RS + "/{name}", "get", op("getRuntimeServer", "One server's runtime state", [P["name"], breq], ok("Server", ref("runtime_server")), ["Runtime"]))
add(RS + "/{name}", "put", op("replaceRuntimeServer", "Change admin state, health or weight at once, without a reload", [P["name"], breq, body("runtime_server")], ok("Changed", ref("runtime_server")), ["Runtime"]))
add("/services/haproxy/stats/native", "get", op("getStats", "Native statistics", [
    {"name": "type", "in": "query", "type": "string", "enum": ["frontend", "backend", "server"]},
    {"name": "name", "in": "query", "type": "string"}, {"name": "parent", "in": "query", "type": "string"}], ok("Stats", ref("native_stats")), ["Stats"]))
add("/info", "get", op("getInfo", "API and host information", [], ok("Info", ref("info")), ["Information"]))
add("/health", "get", op("getHealth", "Health", [], ok("Health", {"type": "object", "properties": {"haproxy": {"type": "string", "enum": ["up", "down", "unknown"]}}}), ["Health"]))
add("/specification", "get", op("getSpecification", "This document", [], ok("OpenAPI document", {"type": "object"}), ["Specification"]))
for p in ["/", "/services", "/services/haproxy", C, "/services/haproxy/runtime"]:
    add(p, "get", op("getEndpoints" + p.replace("/", "_"), "Endpoints under " + p, [], ok("Endpoints", ref("endpoints")), ["Discovery"]))

spec = {
 "swagger": "2.0",
 "info": {"title": "lbha Data Plane API", "version": "2.0",
          "description": "HAProxy Data Plane API v2 as served by lbha: the resources, versions and transactions of the original, applied to lbha.toml."},
 "basePath": "/v2", "consumes": ["application/json"], "produces": ["application/json"], "schemes": ["http"],
 "securityDefinitions": {"basic_auth": {"type": "basic"}}, "security": [{"basic_auth": []}],
 "paths": paths, "definitions": defs,
}
out = os.path.join(os.path.dirname(__file__), "..", "src", "api", "openapi.json")
with open(out, "w") as f:
    json.dump(spec, f, indent=1, sort_keys=False)
    f.write("\n")
print(f"wrote {out}: {sum(len(v) for v in paths.values())} operations")
