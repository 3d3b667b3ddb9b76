//! crm-scheduler
