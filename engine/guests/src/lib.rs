//! crm-guests
