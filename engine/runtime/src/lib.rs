//! crm-runtime
