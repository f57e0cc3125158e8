//! auth-http against a real server on 127.0.0.1, real file storage and HA's fixtures.

use mfa_totp as _;
use provider_homeassistant as _;
use provider_insecure_example as _;

mod harness;
mod inproc;
mod inproc_views;

mod api;
mod bans;
mod brute_force;
mod concurrency;
mod embedding;
mod errors;
mod fixtures;
mod fuzz;
mod login;
mod onboarding;
mod pages;
mod routes;
mod token;
mod websocket;
