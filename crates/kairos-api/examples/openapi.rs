//! Prints the OpenAPI document: `cargo run -p kairos-api --example openapi > docs/openapi.json`.

#[allow(clippy::print_stdout)]
fn main() {
    print!("{}", kairos_api::openapi_json());
}
