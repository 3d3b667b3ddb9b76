//! The entries of an `XREAD` or `XREADGROUP` reply, taken out of the reply as it came.
//!
//! The redis crate's `StreamReadReply` converts a copy of the whole reply (it tries two
//! layouts, each on a copy of its own) and builds a map for every stream and every entry
//! on the way; with a job or a completion in every entry, that copied each payload
//! before anything read it. These commands, as the queue sends them (`COUNT`, no
//! `CLAIM`), answer in one layout, read here by moving each field's bytes into its entry.

use std::collections::HashMap;

use redis::streams::StreamId;
use redis::{FromRedisValue, ParsingError, Value};

/// Every entry of the reply, stream after stream; none for a nil reply (a blocking read
/// that timed out).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct StreamEntries(pub Vec<StreamId>);

impl FromRedisValue for StreamEntries {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let streams: Vec<Value> = match v {
            Value::Nil => return Ok(StreamEntries::default()),
            // RESP2: [[key, entries], …]
            Value::Array(streams) => streams
                .into_iter()
                .map(|s| match s {
                    Value::Array(pair) if pair.len() == 2 => Ok(pair.into_iter().nth(1).unwrap_or(Value::Nil)),
                    other => Err(unexpected("a [stream, entries] pair", &other)),
                })
                .collect::<Result<_, _>>()?,
            // RESP3: {key: entries, …}
            Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
            other => return Err(unexpected("a stream read reply", &other)),
        };
        let mut out = Vec::new();
        for entries in streams {
            match entries {
                Value::Array(entries) => {
                    out.reserve(entries.len());
                    for e in entries {
                        out.push(entry(e)?);
                    }
                }
                Value::Nil => {}
                other => return Err(unexpected("a stream's entries", &other)),
            }
        }
        Ok(StreamEntries(out))
    }
}

/// `[id, [field, value, …]]`; the fields are nil for an entry deleted while pending.
fn entry(v: Value) -> Result<StreamId, ParsingError> {
    let Value::Array(parts) = v else { return Err(unexpected("an [id, fields] entry", &v)) };
    let mut parts = parts.into_iter();
    let (Some(id), Some(fields), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a stream entry is not an [id, fields] pair".to_string().into());
    };
    let id = text(id)?;
    let mut map = HashMap::new();
    match fields {
        Value::Array(flat) => {
            if flat.len() % 2 != 0 {
                return Err(format!("stream entry {id} has an odd number of field names and values").into());
            }
            map.reserve(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                map.insert(text(name)?, value);
            }
        }
        Value::Map(pairs) => {
            for (name, value) in pairs {
                map.insert(text(name)?, value);
            }
        }
        Value::Nil => {}
        other => return Err(unexpected("an entry's fields", &other)),
    }
    Ok(StreamId { id, map, milliseconds_elapsed_from_delivery: None, delivered_count: None })
}

fn text(v: Value) -> Result<String, ParsingError> {
    match v {
        Value::BulkString(bytes) => Ok(String::from_utf8(bytes)?),
        Value::SimpleString(s) => Ok(s),
        other => Err(unexpected("a string", &other)),
    }
}

fn unexpected(wanted: &str, got: &Value) -> ParsingError {
    format!("expected {wanted} in a stream read reply, got {got:?}").into()
}

#[cfg(test)]
mod tests {
    use redis::streams::StreamReadReply;

    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn resp2_reply() -> Value {
        Value::Array(vec![
            Value::Array(vec![
                bulk("{p}:jobs"),
                Value::Array(vec![
                    Value::Array(vec![
                        bulk("1-0"),
                        Value::Array(vec![bulk("payload"), bulk("{\"a\":1}"), bulk("sig"), bulk("x")]),
                    ]),
                    Value::Array(vec![bulk("1-1"), Value::Nil]),
                ]),
            ]),
            Value::Array(vec![
                bulk("{p}:other"),
                Value::Array(vec![Value::Array(vec![bulk("2-0"), Value::Array(vec![bulk("k"), bulk("v")])])]),
            ]),
        ])
    }

    /// The same entries as the redis crate's own reader finds, in the same order.
    #[test]
    fn reads_what_the_crates_reader_reads() {
        let ours = StreamEntries::from_redis_value(resp2_reply()).unwrap().0;
        let theirs: Vec<StreamId> =
            StreamReadReply::from_redis_value(resp2_reply()).unwrap().keys.into_iter().flat_map(|k| k.ids).collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["1-0", "1-1", "2-0"]);
        assert_eq!(ours[0].map.get("payload"), Some(&bulk("{\"a\":1}")));
        assert!(ours[1].map.is_empty(), "an entry deleted while pending has no fields");
    }

    #[test]
    fn reads_the_resp3_layout() {
        let reply = Value::Map(vec![(
            bulk("{p}:completions"),
            Value::Array(vec![Value::Array(vec![bulk("3-0"), Value::Array(vec![bulk("data"), bulk("{}")])])]),
        )]);
        let entries = StreamEntries::from_redis_value(reply).unwrap().0;
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].id.as_str(), entries[0].map.get("data")), ("3-0", Some(&bulk("{}"))));
    }

    #[test]
    fn a_timed_out_read_has_no_entries() {
        assert_eq!(StreamEntries::from_redis_value(Value::Nil).unwrap(), StreamEntries::default());
    }

    /// A reply of another shape is an error that says what was wrong, never a panic.
    #[test]
    fn malformed_replies_are_refused() {
        let malformed = [
            Value::Int(1),
            Value::Array(vec![bulk("{p}:jobs")]),
            Value::Array(vec![Value::Array(vec![bulk("{p}:jobs"), Value::Int(3)])]),
            Value::Array(vec![Value::Array(vec![bulk("{p}:jobs"), Value::Array(vec![bulk("1-0")])])]),
            Value::Array(vec![Value::Array(vec![
                bulk("{p}:jobs"),
                Value::Array(vec![Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("odd")])])]),
            ])]),
            Value::Array(vec![Value::Array(vec![
                bulk("{p}:jobs"),
                Value::Array(vec![Value::Array(vec![Value::BulkString(vec![0xff]), Value::Nil])]),
            ])]),
        ];
        for reply in malformed {
            let shown = format!("{reply:?}");
            let err = StreamEntries::from_redis_value(reply).expect_err(&shown);
            assert!(!err.to_string().is_empty());
        }
    }
}
