//! HTTP routes. Handlers turn requests into domain values and call
//! [`crate::ops`] or [`crate::db`]; nothing else lives here.

pub mod actions;
pub mod audit;
pub mod bulk;
pub mod health;
pub mod items;
pub mod views;

pub(crate) use service_common::request::query;

pub(crate) use service_common::request::reason_body as write_body;
