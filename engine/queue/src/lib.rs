//! crm-queue
