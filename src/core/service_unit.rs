//! The service definitions `ductor service install` writes (ops spec §16), as text: the systemd
//! user unit and the launchd agent plist, and the `PATH` they give ductor (nvm's node folders
//! newest first, then the usual bin folders, without repeats).

/// The systemd unit's name.
pub const SYSTEMD_UNIT: &str = "ductor";
/// The launchd agent's label.
pub const LAUNCHD_LABEL: &str = "dev.ductor";

/// What the unit is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFacts {
    /// Absolute path of the `ductor` binary.
    pub binary: String,
    /// The user's home folder.
    pub user_home: String,
    /// `~/.nvm/versions/node/*/bin` folders that exist (any order).
    pub nvm_bins: Vec<String>,
    /// `DUCTOR_HOME` when it is set for the installing user (the service uses the same home).
    pub ductor_home: Option<String>,
}

/// The `PATH` of the service: nvm node folders sorted descending, then `tail` (the usual bin
/// folders of the platform), de-duplicated in order.
pub fn service_path(facts: &UnitFacts, tail: &[&str]) -> String {
    let mut nvm = facts.nvm_bins.clone();
    nvm.sort_by(|a, b| b.cmp(a));
    let mut out: Vec<String> = Vec::new();
    for dir in nvm.into_iter().chain(tail.iter().map(|d| d.replace('~', &facts.user_home))) {
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    out.join(":")
}

/// The systemd user unit: restarted 5 s after any failure (exit 42 included; a clean stop stays
/// stopped), `DUCTOR_SUPERVISOR=1` so ductor leaves restarts to systemd.
pub fn systemd_unit(facts: &UnitFacts) -> String {
    let path = service_path(facts, &["~/.local/bin", "/usr/local/bin", "/usr/bin", "/bin"]);
    let mut env = format!("Environment=PATH={path}\nEnvironment=HOME={}\n", facts.user_home);
    if let Some(home) = &facts.ductor_home {
        env.push_str(&format!("Environment=DUCTOR_HOME={home}\n"));
    }
    format!(
        "[Unit]\n\
         Description=ductor - Telegram bot powered by AI CLIs\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={binary}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         {env}\
         Environment=DUCTOR_SUPERVISOR=1\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        binary = facts.binary,
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The launchd agent (`~/Library/LaunchAgents/dev.ductor.plist`): started at login, restarted
/// after a non-zero exit (10 s throttle), output into `<ductor home>/logs/`.
pub fn launchd_plist(facts: &UnitFacts, ductor_home: &str) -> String {
    let path = service_path(facts, &["~/.local/bin", "/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin"]);
    let mut env = format!(
        "        <key>PATH</key>\n        <string>{}</string>\n        <key>HOME</key>\n        <string>{}</string>\n",
        xml_escape(&path),
        xml_escape(&facts.user_home)
    );
    if let Some(home) = &facts.ductor_home {
        env.push_str(&format!("        <key>DUCTOR_HOME</key>\n        <string>{}</string>\n", xml_escape(home)));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>Label</key>
    <string>{LAUNCHD_LABEL}</string>
    <key>ProgramArguments</key>
    <array>
        <string>{binary}</string>
    </array>
    <key>RunAtLoad</key>
    <true/>
    <key>KeepAlive</key>
    <dict>
        <key>SuccessfulExit</key>
        <false/>
    </dict>
    <key>ThrottleInterval</key>
    <integer>10</integer>
    <key>ProcessType</key>
    <string>Background</string>
    <key>EnvironmentVariables</key>
    <dict>
{env}        <key>DUCTOR_SUPERVISOR</key>
        <string>1</string>
    </dict>
    <key>StandardOutPath</key>
    <string>{home}/logs/service.log</string>
    <key>StandardErrorPath</key>
    <string>{home}/logs/service.err</string>
</dict>
</plist>
"#,
        binary = xml_escape(&facts.binary),
        home = xml_escape(ductor_home),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> UnitFacts {
        UnitFacts {
            binary: "/home/ada/.cargo/bin/ductor".into(),
            user_home: "/home/ada".into(),
            nvm_bins: vec![
                "/home/ada/.nvm/versions/node/v18.1.0/bin".into(),
                "/home/ada/.nvm/versions/node/v20.3.0/bin".into(),
            ],
            ductor_home: None,
        }
    }

    #[test]
    fn systemd_unit_is_the_documented_text() {
        let expected = "[Unit]
Description=ductor - Telegram bot powered by AI CLIs
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=/home/ada/.cargo/bin/ductor
Restart=on-failure
RestartSec=5
Environment=PATH=/home/ada/.nvm/versions/node/v20.3.0/bin:/home/ada/.nvm/versions/node/v18.1.0/bin:/home/ada/.local/bin:/usr/local/bin:/usr/bin:/bin
Environment=HOME=/home/ada
Environment=DUCTOR_SUPERVISOR=1

[Install]
WantedBy=default.target
";
        assert_eq!(systemd_unit(&facts()), expected);
    }

    #[test]
    fn a_set_ductor_home_goes_into_the_unit_and_paths_are_not_repeated() {
        let mut f = facts();
        f.ductor_home = Some("/srv/bot".into());
        f.nvm_bins = vec!["/usr/bin".into()];
        let unit = systemd_unit(&f);
        assert!(unit.contains("Environment=DUCTOR_HOME=/srv/bot\n"), "{unit}");
        assert!(unit.contains("Environment=PATH=/usr/bin:/home/ada/.local/bin:/usr/local/bin:/bin\n"), "{unit}");
    }

    #[test]
    fn launchd_plist_keeps_alive_on_failure_and_logs_into_the_home() {
        let plist = launchd_plist(&facts(), "/Users/ada/.ductor");
        assert!(plist.contains("<string>dev.ductor</string>"));
        assert!(plist.contains("<key>SuccessfulExit</key>\n        <false/>"));
        assert!(plist.contains("<integer>10</integer>"));
        assert!(plist.contains("/opt/homebrew/bin"));
        assert!(plist.contains("<key>DUCTOR_SUPERVISOR</key>\n        <string>1</string>"));
        assert!(plist.contains("<string>/Users/ada/.ductor/logs/service.err</string>"));
    }
}
