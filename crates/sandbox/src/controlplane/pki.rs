//! The box's certificates, made with the `openssl` command: a CA, the API
//! server's serving certificate, one client certificate per component (its
//! common name is the user the API server's authorizer sees), the
//! service-account signing key pair and the virtual kubelet's serving
//! certificate. EC P-256 keys: generated in milliseconds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A client identity: its certificate and key files.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// Every file of the box's PKI.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The folder holding the files.
    pub dir: PathBuf,
    /// The CA certificate every component trusts.
    pub ca: PathBuf,
    /// The API server's serving certificate.
    pub apiserver: Identity,
    /// The service-account token signing key pair (private, public).
    pub sa_key: PathBuf,
    /// The service-account token verification key.
    pub sa_pub: PathBuf,
}

/// Who gets a client certificate: file stem, common name, organisation.
const CLIENTS: &[(&str, &str, &str)] = &[
    ("admin", "box-admin", "system:masters"),
    (
        "kube-controller-manager",
        "system:kube-controller-manager",
        "",
    ),
    ("kube-scheduler", "system:kube-scheduler", ""),
    ("kube-proxy", "system:kube-proxy", "system:node-proxier"),
    // The virtual kubelet serves several nodes from one process, so it
    // cannot be one `system:node:<name>`; it is an administrator of the box.
    ("virtual-kubelet", "box-virtual-kubelet", "system:masters"),
    (
        "apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        "system:masters",
    ),
];

/// `openssl req` arguments for a new EC P-256 key without a passphrase.
const NEW_EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

fn openssl(dir: &Path, args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn sign(dir: &Path, stem: &str, subject: &str, ext: &str) -> std::io::Result<Identity> {
    let key = format!("{stem}.key");
    let csr = format!("{stem}.csr");
    let crt = format!("{stem}.crt");
    let extfile = format!("{stem}.ext");
    std::fs::write(dir.join(&extfile), ext)?;
    openssl(
        dir,
        &[
            &["req", "-new"][..],
            &NEW_EC_KEY,
            &["-keyout", &key, "-out", &csr, "-subj", subject],
        ]
        .concat(),
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &format!("{}", uuid::Uuid::new_v4().as_u128() >> 65),
            "-days",
            "3650",
            "-out",
            &crt,
            "-extfile",
            &extfile,
        ],
    )?;
    Ok(Identity {
        cert: dir.join(crt),
        key: dir.join(key),
    })
}

impl Pki {
    /// Creates the PKI in `dir`; the API server's certificate names
    /// `addresses` (the `kubernetes` Service's and the one it listens on)
    /// besides 127.0.0.1 and the `kubernetes` Service's DNS names.
    pub fn create(dir: &Path, addresses: &[&str]) -> std::io::Result<Self> {
        let ips: String = addresses.iter().map(|a| format!(",IP:{a}")).collect();
        std::fs::create_dir_all(dir)?;
        openssl(
            dir,
            &[
                &["req", "-x509"][..],
                &NEW_EC_KEY,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "3650",
                    "-subj",
                    "/CN=sandbox-ca",
                ],
            ]
            .concat(),
        )?;
        let apiserver = sign(
            dir,
            "apiserver",
            "/CN=kube-apiserver",
            &format!(
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1{ips},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
            ),
        )?;
        sign(
            dir,
            "kubelet-serving",
            "/CN=virtual-kubelet",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        for (stem, cn, org) in CLIENTS {
            let subject = if org.is_empty() {
                format!("/CN={cn}")
            } else {
                format!("/O={org}/CN={cn}")
            };
            sign(
                dir,
                stem,
                &subject,
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
            )?;
        }
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-out",
                "sa.key",
            ],
        )?;
        openssl(dir, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.crt"),
            apiserver,
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
        })
    }

    /// The client identity made for `stem` (one of the components).
    pub fn client(&self, stem: &str) -> Identity {
        Identity {
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
        }
    }

    /// The virtual kubelet's serving certificate.
    pub fn kubelet_serving(&self) -> Identity {
        self.client("kubelet-serving")
    }

    /// The CA's key (the controller manager's CSR signer uses it).
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// A kubeconfig for `server` with the client certificate of `stem`.
    pub fn kubeconfig(&self, server: &str, stem: &str) -> String {
        let id = self.client(stem);
        self.kubeconfig_with(
            server,
            stem,
            &format!(
                "client-certificate: {}\n    client-key: {}",
                id.cert.display(),
                id.key.display()
            ),
        )
    }

    /// A kubeconfig for `server` with a bearer token (a ServiceAccount's).
    pub fn token_kubeconfig(&self, server: &str, user: &str, token: &str) -> String {
        self.kubeconfig_with(server, user, &format!("token: {token}"))
    }

    fn kubeconfig_with(&self, server: &str, user: &str, credentials: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: box\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    {credentials}\ncontexts:\n- name: box\n  context:\n    cluster: box\n    user: {user}\ncurrent-context: box\n",
            ca = self.ca.display(),
        )
    }
}
