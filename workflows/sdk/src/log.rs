//! Structured logging into the step's log (capability `log`).

use serde_json::Value;

use crate::bindings::crm::automation::log::{Level, write};

fn emit(level: Level, message: &str, fields: Value) {
    let fields = if fields.is_null() { String::new() } else { fields.to_string() };
    write(level, message, &fields);
}

pub fn debug(message: &str, fields: Value) {
    emit(Level::Debug, message, fields);
}

pub fn info(message: &str, fields: Value) {
    emit(Level::Info, message, fields);
}

pub fn warn(message: &str, fields: Value) {
    emit(Level::Warn, message, fields);
}

pub fn error(message: &str, fields: Value) {
    emit(Level::Error, message, fields);
}
