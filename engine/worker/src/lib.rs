//! crm-worker
