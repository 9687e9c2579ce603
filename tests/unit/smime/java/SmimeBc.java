// SmimeBc - Bouncy Castle 1.72 peer for test_smime_interop (compiled at test
// time). Usage:
//   decrypt P12 PASS IN.der OUT         EnvelopedData / AuthEnvelopedData
//   verify CA.pem IN.der [CONTENT]      SignedData (encapsulated or detached)
//   encrypt CERT.pem CIPHER OAEP IN OUT.der   CIPHER aes256cbc|aes256gcm, OAEP 0|1
//   sign P12 PASS IN OUT.der DETACHED   SHA-256
// Exit 0 on success; messages on stderr.
import java.io.*;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.security.spec.*;
import java.util.*;
import javax.crypto.spec.*;
import org.bouncycastle.asn1.cms.ContentInfo;
import org.bouncycastle.asn1.cms.CMSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.*;
import org.bouncycastle.cms.*;
import org.bouncycastle.cms.jcajce.*;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.jcajce.*;

public class SmimeBc {
	static byte[] read(String p) throws Exception { return Files.readAllBytes(Paths.get(p)); }

	static X509Certificate cert(String p) throws Exception {
		return (X509Certificate) CertificateFactory.getInstance("X.509", "BC")
			.generateCertificate(new FileInputStream(p));
	}

	static KeyStore p12(String p, String pw) throws Exception {
		KeyStore ks = KeyStore.getInstance("PKCS12", "BC");
		ks.load(new FileInputStream(p), pw.toCharArray());
		return ks;
	}

	static String alias(KeyStore ks) throws Exception {
		for (String a : Collections.list(ks.aliases()))
			if (ks.isKeyEntry(a)) return a;
		throw new Exception("no key in p12");
	}

	public static void main(String[] a) throws Exception {
		Security.addProvider(new BouncyCastleProvider());
		switch (a[0]) {
		case "decrypt": {
			KeyStore ks = p12(a[1], a[2]);
			PrivateKey key = (PrivateKey) ks.getKey(alias(ks), a[2].toCharArray());
			byte[] in = read(a[3]);
			ContentInfo ci = ContentInfo.getInstance(in);
			RecipientInformationStore store;
			if (ci.getContentType().equals(CMSObjectIdentifiers.authEnvelopedData))
				store = new CMSAuthEnvelopedData(in).getRecipientInfos();
			else
				store = new CMSEnvelopedData(in).getRecipientInfos();
			for (RecipientInformation ri : store.getRecipients()) {
				try {
					Recipient r = ri instanceof KeyAgreeRecipientInformation
						? new JceKeyAgreeEnvelopedRecipient(key).setProvider("BC")
						: new JceKeyTransEnvelopedRecipient(key).setProvider("BC");
					Files.write(Paths.get(a[4]), ri.getContent(r));
					return;
				} catch (Exception e) {
					System.err.println("recipient: " + e);
				}
			}
			System.exit(1);
		}
		case "verify": {
			X509Certificate ca = cert(a[1]);
			byte[] in = read(a[2]);
			CMSSignedData sd = a.length > 3
				? new CMSSignedData(new CMSProcessableByteArray(read(a[3])), in)
				: new CMSSignedData(in);
			int ok = 0;
			for (SignerInformation si : sd.getSignerInfos().getSigners()) {
				Collection<X509CertificateHolder> c = sd.getCertificates().getMatches(si.getSID());
				X509Certificate x = new JcaX509CertificateConverter().setProvider("BC")
					.getCertificate(c.iterator().next());
				x.verify(ca.getPublicKey());
				if (!si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(x))) {
					System.err.println("signature invalid");
					System.exit(1);
				}
				ok++;
			}
			if (ok == 0) System.exit(1);
			if (a.length <= 3)
				Files.write(Paths.get(a[2] + ".content"), (byte[]) sd.getSignedContent().getContent());
			return;
		}
		case "encrypt": {
			X509Certificate rc = cert(a[1]);
			boolean gcm = a[2].equals("aes256gcm");
			boolean oaep = a[3].equals("1");
			RecipientInfoGenerator rig;
			if (rc.getPublicKey().getAlgorithm().startsWith("EC")) {
				KeyPairGenerator kpg = KeyPairGenerator.getInstance("EC", "BC");
				kpg.initialize(new ECGenParameterSpec("P-256"));
				KeyPair kp = kpg.generateKeyPair();
				rig = new JceKeyAgreeRecipientInfoGenerator(CMSAlgorithm.ECDH_SHA256KDF,
					kp.getPrivate(), kp.getPublic(), CMSAlgorithm.AES256_WRAP)
					.addRecipient(rc).setProvider("BC");
			} else if (oaep) {
				rig = new JceKeyTransRecipientInfoGenerator(rc,
					new JcaAlgorithmParametersConverter().getAlgorithmIdentifier(
						PKCSObjectIdentifiers.id_RSAES_OAEP, new OAEPParameterSpec("SHA-256",
							"MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT)))
					.setProvider("BC");
			} else {
				rig = new JceKeyTransRecipientInfoGenerator(rc).setProvider("BC");
			}
			byte[] data = read(a[4]);
			byte[] out;
			if (gcm) {
				CMSAuthEnvelopedDataGenerator g = new CMSAuthEnvelopedDataGenerator();
				g.addRecipientInfoGenerator(rig);
				out = g.generate(new CMSProcessableByteArray(data),
					(org.bouncycastle.operator.OutputAEADEncryptor) new JceCMSContentEncryptorBuilder(
						CMSAlgorithm.AES256_GCM).setProvider("BC").build()).getEncoded();
			} else {
				CMSEnvelopedDataGenerator g = new CMSEnvelopedDataGenerator();
				g.addRecipientInfoGenerator(rig);
				out = g.generate(new CMSProcessableByteArray(data),
					new JceCMSContentEncryptorBuilder(CMSAlgorithm.AES256_CBC).setProvider("BC")
						.build()).getEncoded();
			}
			Files.write(Paths.get(a[5]), out);
			return;
		}
		case "sign": {
			KeyStore ks = p12(a[1], a[2]);
			String al = alias(ks);
			PrivateKey key = (PrivateKey) ks.getKey(al, a[2].toCharArray());
			X509Certificate x = (X509Certificate) ks.getCertificate(al);
			String alg = key.getAlgorithm().startsWith("EC") ? "SHA256withECDSA" : "SHA256withRSA";
			CMSSignedDataGenerator g = new CMSSignedDataGenerator();
			g.addSignerInfoGenerator(new JcaSimpleSignerInfoGeneratorBuilder().setProvider("BC")
				.build(alg, key, x));
			g.addCertificates(new JcaCertStore(Arrays.asList(ks.getCertificateChain(al))));
			byte[] out = g.generate(new CMSProcessableByteArray(read(a[3])),
				!a[5].equals("1")).getEncoded();
			Files.write(Paths.get(a[4]), out);
			return;
		}
		}
		System.exit(2);
	}
}
