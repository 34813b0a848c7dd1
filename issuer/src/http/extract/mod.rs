//! Extractors: tenant and principal (authorization is a type in the handler signature), and
//! request bodies with the issuer's error mapping.

mod client_ip;
mod form;
mod json;
mod principal;
mod request_context;
mod tenant;

pub(crate) use client_ip::ClientIp;
pub(crate) use form::FormBody;
pub(crate) use json::JsonBody;
