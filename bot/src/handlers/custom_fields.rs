//! The custom field definitions a card shows and an edit dialogue offers, read from the
//! engine each time (an admin may change them at any moment; a look-up is one small query).

use crm_concepts::custom_fields::FieldDefinition;
use crm_concepts::records::RecordKind;
use serde::Deserialize;

use super::Req;

#[derive(Deserialize)]
struct Definitions {
    items: Vec<FieldDefinition>,
}

/// The definitions of `kind`; none when the engine cannot say (the card then shows every
/// custom value by its key, as free-form).
pub async fn definitions(req: &Req<'_>, kind: RecordKind) -> Vec<FieldDefinition> {
    match req.ctx.engine.get::<Definitions>(req.acting(), "/api/fields", &[("kind", kind.as_str().to_string())]).await {
        Ok(d) => d.items,
        Err(e) => {
            super::log_engine_error(&e);
            Vec::new()
        }
    }
}
