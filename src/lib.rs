//! mysql-aa-operator: a Kubernetes operator for master-master (active-active)
//! MySQL and MariaDB pairs.
//!
//! - [`api`]: the `MySQLActiveActive` custom resource, its defaults and its
//!   admission rules.
//! - [`admission`]: validates a resource the way the API server would (the
//!   CRD's schema and CEL rules), for `render` and the controller.
//! - [`render`]: pure functions from a validated resource to the Kubernetes
//!   objects the operator owns.
//! - [`mysql`]: the one seam to MySQL and MariaDB.
//! - [`topology`]: the pure decision from observed nodes to a plan.
//! - [`controller`]: `run`, the Kubernetes controller and the pair loop.
//! - [`lease`]: the writer Lease, as the operator and the agents read it.
//! - [`agent`]: the self-fencing agent beside each server.
//! - [`reseed`]: copying the writer's data into a node that lost its own.
//! - [`cli`]: the subcommands.

pub mod accounts;
pub mod admission;
pub mod agent;
pub mod api;
pub mod apiclient;
pub mod cli;
pub mod controller;
pub mod lease;
pub mod mysql;
pub mod render;
pub mod report;
pub mod request;
pub mod reseed;
pub mod topology;
