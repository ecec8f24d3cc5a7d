//! The one integration-test binary: the dashboard started in-process, a
//! provider on loopback, SQLite files and the local PostgreSQL server.

mod admin;
mod api;
mod architecture;
mod audit;
mod callback;
mod cli;
mod connect;
mod elevation;
mod faults;
mod fleet;
mod idp;
mod inert;
mod instances;
mod keys;
mod launch;
mod limits;
mod metrics;
mod offboarding;
mod release;
mod signin;
mod storage;
mod store;
mod stream;
mod support;
mod web;
