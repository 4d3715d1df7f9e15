//! Layering: the start flags and the environment over the values of the file.
//!
//! Runs after `config::file` has read the file, as the last step of `Config::load`. The
//! precedence is the Go original's (kratos flags that default to environment variables):
//!
//! - `[env]` region, zone, DeployEnv: the file's value, else `-region`/`-zone`/`-deploy.env`,
//!   else `REGION`/`ZONE`/`DEPLOY_ENV`. An empty value counts as missing at every layer.
//! - `[env]` host: the file's value, else `HOSTNAME`, else the system hostname.
//! - `[log] dir`: the file's value, else `-log.dir`, else `LOG_DIR`.
//! - `httpServer.threads`: `-threads` replaces the file's value (our flag, no variable).
//!
//! It then insists on the identity fields the registry cannot work without.

use std::path::PathBuf;

use super::env::{system_hostname, Vars};
use super::{Config, ConfigError, EnvConfig};

/// Values given on the command line that layer over the file (see the module doc for the
/// precedence). `Default` is "no flags".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `-region`: `[env] region` where the file leaves it empty; before `REGION`.
    pub region: Option<String>,
    /// `-zone`: `[env] zone` where the file leaves it empty; before `ZONE`.
    pub zone: Option<String>,
    /// `-deploy.env`: `[env] DeployEnv` where the file leaves it empty; before `DEPLOY_ENV`.
    pub deploy_env: Option<String>,
    /// `-threads`: replaces `httpServer.threads`; at most 1024, which the command line checks.
    pub threads: Option<usize>,
    /// `-log.dir`: `[log] dir` where the file has none; before `LOG_DIR`. Used as given,
    /// relative to the working directory (only the file's own `dir` is relative to the file).
    pub log_dir: Option<PathBuf>,
}

/// Fills what the file left open from `flags`, then from `vars`, and checks the identity.
pub(super) fn apply(config: &mut Config, flags: &Overrides, vars: Vars) -> Result<(), ConfigError> {
    fill_identity(&mut config.env, flags, vars)?;
    if let Some(threads) = flags.threads {
        config.http_server.threads = threads;
    }
    if config.log.dir.is_none() {
        config.log.dir = flags
            .log_dir
            .clone()
            .or_else(|| vars("LOG_DIR").map(PathBuf::from));
    }
    Ok(())
}

/// Fills empty `[env]` fields, then insists on the fields the registry cannot work without.
fn fill_identity(env: &mut EnvConfig, flags: &Overrides, vars: Vars) -> Result<(), ConfigError> {
    // A variable that is not valid UTF-8 counts as unset, as with `std::env::var`.
    let var = |name: &str| {
        vars(name)
            .and_then(|v| v.into_string().ok())
            .filter(|v| !v.is_empty())
    };
    for (value, flag, name) in [
        (&mut env.region, &flags.region, "REGION"),
        (&mut env.zone, &flags.zone, "ZONE"),
        (&mut env.deploy_env, &flags.deploy_env, "DEPLOY_ENV"),
    ] {
        if value.is_empty() {
            *value = flag
                .clone()
                .filter(|v| !v.is_empty())
                .or_else(|| var(name))
                .unwrap_or_default();
        }
    }
    if env.host.is_empty() {
        env.host = var("HOSTNAME").or_else(system_hostname).unwrap_or_default();
    }
    for (key, var, value) in [
        ("env.zone", "ZONE", &env.zone),
        ("env.DeployEnv", "DEPLOY_ENV", &env.deploy_env),
        ("env.host", "HOSTNAME", &env.host),
    ] {
        if value.is_empty() {
            return Err(ConfigError::key(
                key,
                format!("empty, and {var} is not set"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::Path;

    use super::super::file;
    use super::*;

    /// An environment holding exactly `pairs`.
    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    /// Reads `text` as a file in directory `base` and layers `flags` and `env` over it.
    fn layered(text: &str, flags: &Overrides, env: Vars) -> Result<Config, ConfigError> {
        let mut c = file::parse(text, Some(PathBuf::from("base")))?;
        apply(&mut c, flags, env)?;
        Ok(c)
    }

    fn identity(c: &Config) -> [&str; 4] {
        let e = &c.env;
        [&e.region, &e.zone, &e.host, &e.deploy_env]
    }

    #[test]
    fn env_falls_back_to_variables() {
        let env = vars(&[
            ("REGION", "sh"),
            ("ZONE", "sh001"),
            ("DEPLOY_ENV", "uat"),
            ("HOSTNAME", "node-7"),
        ]);
        let c = layered("", &Overrides::default(), &env).unwrap();
        assert_eq!(identity(&c), ["sh", "sh001", "node-7", "uat"]);
        // Values in the file win; an empty string in the file counts as missing.
        let c = layered(
            "[env]\nzone = \"\"\nhost = \"mine\"\n",
            &Overrides::default(),
            &env,
        )
        .unwrap();
        assert_eq!(identity(&c), ["sh", "sh001", "mine", "uat"]);
    }

    #[test]
    fn identity_is_file_then_flag_then_variable() {
        let flags = Overrides {
            region: Some("flag-r".into()),
            zone: Some("flag-z".into()),
            deploy_env: Some("flag-d".into()),
            ..Overrides::default()
        };
        let env = vars(&[
            ("REGION", "env-r"),
            ("ZONE", "env-z"),
            ("DEPLOY_ENV", "env-d"),
            ("HOSTNAME", "h"),
        ]);
        let file = "[env]\nregion = \"file-r\"\nzone = \"file-z\"\nDeployEnv = \"file-d\"\n";
        let c = layered(file, &flags, &env).unwrap();
        assert_eq!(identity(&c), ["file-r", "file-z", "h", "file-d"]);

        let c = layered("", &flags, &env).unwrap();
        assert_eq!(identity(&c), ["flag-r", "flag-z", "h", "flag-d"]);

        // Each field falls through on its own: the file's zone, the flag's region, the variable's
        // DeployEnv.
        let some = Overrides {
            region: Some("flag-r".into()),
            zone: Some("flag-z".into()),
            ..Overrides::default()
        };
        let c = layered("[env]\nzone = \"file-z\"\n", &some, &env).unwrap();
        assert_eq!(identity(&c), ["flag-r", "file-z", "h", "env-d"]);

        // An empty flag is no flag.
        let empty = Overrides {
            zone: Some(String::new()),
            ..Overrides::default()
        };
        let c = layered("", &empty, &env).unwrap();
        assert_eq!(c.env.zone, "env-z");
    }

    #[test]
    fn a_flag_supplies_a_missing_identity() {
        let flags = Overrides {
            zone: Some("z".into()),
            deploy_env: Some("d".into()),
            ..Overrides::default()
        };
        let c = layered("[env]\nhost = \"h\"\n", &flags, &vars(&[])).unwrap();
        assert_eq!(identity(&c), ["", "z", "h", "d"]);
    }

    #[test]
    fn host_falls_back_to_system_hostname() {
        let env = vars(&[("ZONE", "x"), ("DEPLOY_ENV", "x"), ("HOSTNAME", "")]);
        let c = layered("", &Overrides::default(), &env).unwrap();
        assert_eq!(Some(c.env.host), system_hostname());
    }

    #[test]
    fn non_utf8_identity_variable_counts_as_unset() {
        use std::os::unix::ffi::OsStringExt;
        let env = |name: &str| match name {
            "ZONE" => Some(OsString::from_vec(vec![0xff, 0xfe])),
            "DEPLOY_ENV" | "HOSTNAME" => Some(OsString::from("x")),
            _ => None,
        };
        let e = layered("", &Overrides::default(), &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config: key `env.zone`: empty, and ZONE is not set"
        );
    }

    #[test]
    fn missing_identity_is_an_error() {
        let none = Overrides::default();
        let no_env = vars(&[]);
        let e = layered("[env]\nhost = \"h\"\ndeployenv = \"dev\"\n", &none, &no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("env.zone") && e.contains("ZONE"), "{e}");
        let e = layered("[env]\nhost = \"h\"\nzone = \"z\"\n", &none, &no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DEPLOY_ENV"), "{e}");
        // Region is optional.
        let c = layered(
            "[env]\nhost = \"h\"\nzone = \"z\"\ndeployenv = \"dev\"\n",
            &none,
            &no_env,
        )
        .unwrap();
        assert_eq!(c.env.region, "");
    }

    /// `[env]` complete, so only the layer under test matters.
    const FULL_ENV: &str = "[env]\nzone = \"z\"\nhost = \"h\"\ndeployenv = \"dev\"\n";

    #[test]
    fn threads_flag_replaces_the_file() {
        let file = format!("{FULL_ENV}[httpServer]\nthreads = 3\n");
        let c = layered(&file, &Overrides::default(), &vars(&[])).unwrap();
        assert_eq!(c.http_server.threads, 3);
        for t in [0, 8] {
            let flags = Overrides {
                threads: Some(t),
                ..Overrides::default()
            };
            let c = layered(&file, &flags, &vars(&[])).unwrap();
            assert_eq!(c.http_server.threads, t);
        }
    }

    #[test]
    fn log_dir_is_file_then_flag_then_variable() {
        let flag = Overrides {
            log_dir: Some(PathBuf::from("flag/log")),
            ..Overrides::default()
        };
        let none = Overrides::default();
        let (env, no_env) = (vars(&[("LOG_DIR", "env/log")]), vars(&[]));
        let (env, no_env): (Vars, Vars) = (&env, &no_env);
        let in_file = format!("{FULL_ENV}[log]\ndir = \"logs\"\n");
        // The file's dir is relative to the file's directory; the others are used as given.
        let base_logs = Path::new("base").join("logs");
        let cases = [
            (in_file.as_str(), &flag, env, Some(base_logs.as_path())),
            (FULL_ENV, &flag, env, Some(Path::new("flag/log"))),
            (FULL_ENV, &none, env, Some(Path::new("env/log"))),
            (FULL_ENV, &none, no_env, None),
        ];
        for (text, flags, env, want) in cases {
            let c = layered(text, flags, env).unwrap();
            assert_eq!(c.log.dir.as_deref(), want, "{text:?} {flags:?}");
        }
        // An empty `dir` in the file is no dir.
        let c = layered(&format!("{FULL_ENV}[log]\ndir = \"\"\n"), &flag, env).unwrap();
        assert_eq!(c.log.dir.as_deref(), Some(Path::new("flag/log")));
    }

    #[test]
    fn log_dir_variable_need_not_be_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let raw = vec![b'l', 0xff];
        let env = |name: &str| (name == "LOG_DIR").then(|| OsString::from_vec(raw.clone()));
        let c = layered(FULL_ENV, &Overrides::default(), &env).unwrap();
        assert_eq!(c.log.dir, Some(PathBuf::from(OsString::from_vec(raw))));
    }
}
