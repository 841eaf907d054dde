//! The OpenAPI (Swagger 2.0) document served at `/v2/specification`, kept in the repository
//! as `openapi.json` beside this file. `router::tests` checks it against the route table.

pub const OPENAPI: &str = include_str!("openapi.json");
