//! crm-api
