//! `gadugi trust [--show] [--revoke] [--yes]`: the person trusts the repository's
//! configuration that can grant agents something (the `[approvals]` table and the keys in
//! `spec::trust::GRANTING_KEYS`), so its allow rules and `default = "allow"` count — for
//! exactly the text shown.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;

use crate::error::{InputError, EXIT_OK};
use crate::ops::trust::{revoke, target, trust};
use crate::spec::trust::{line_diff, TrustStatus, GRANTING_KEYS};

/// The arguments of `gadugi trust`.
#[derive(Debug, Clone, Default)]
pub struct TrustArgs {
    /// Repository [default: the one containing the current directory].
    pub repo: Option<PathBuf>,
    /// Only print the trust status.
    pub show: bool,
    /// Remove the trust.
    pub revoke: bool,
    /// Trust without asking (needed when standard input is not a terminal).
    pub yes: bool,
}

/// Runs `gadugi trust`.
pub fn run(args: TrustArgs) -> Result<i32> {
    if args.revoke {
        let had = revoke(args.repo)?;
        println!(
            "{}",
            if had {
                "trust revoked: gadugi.toml's allow rules and default = \"allow\" no longer count"
            } else {
                "this repository's configuration was not trusted; nothing to revoke"
            }
        );
        return Ok(EXIT_OK);
    }
    let t = target(args.repo)?;
    let keys: Vec<String> = GRANTING_KEYS
        .iter()
        .map(|(table, key)| match *key {
            "*" => format!("[{table}]"),
            _ => format!("{table}.{key}"),
        })
        .collect();
    let what = format!(
        "{} — what can grant agents something without asking ({}):\n\n{}",
        t.config_file.display(),
        keys.join(", "),
        indent(&t.canonical)
    );
    if args.show {
        println!("{what}\n");
        match &t.status {
            TrustStatus::NotTrusted => println!("not trusted: run `gadugi trust` to let its allow rules count"),
            TrustStatus::Trusted(r) => println!("trusted on {}", r.date()),
            TrustStatus::Changed(r) => {
                println!(
                    "changed since you trusted it on {}: its allow rules do not count until you run `gadugi trust` again\n",
                    r.date()
                );
                for line in line_diff(&r.sections, &t.canonical) {
                    println!("  {line}");
                }
            }
        }
        return Ok(EXIT_OK);
    }
    if let TrustStatus::Trusted(r) = &t.status {
        println!("already trusted on {}, unchanged since", r.date());
        return Ok(EXIT_OK);
    }
    println!("{what}\n");
    if let TrustStatus::Changed(r) = &t.status {
        println!("changed since you trusted it on {}:", r.date());
        for line in line_diff(&r.sections, &t.canonical) {
            println!("  {line}");
        }
        println!();
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(InputError::new(
                "gadugi trust asks for confirmation, and standard input is not a terminal",
                "read what is shown above, then run `gadugi trust --yes` to trust it",
            )
            .into());
        }
        print!("Let agents be granted this without asking? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("not trusted");
            return Ok(EXIT_OK);
        }
    }
    let path = trust(&t)?;
    println!(
        "trusted: its allow rules and default = \"allow\" count until gadugi.toml changes them ({})",
        path.display()
    );
    Ok(EXIT_OK)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}
