using Hull.Cdi;
using Hull.Linux;

namespace Hull.E2E.Fixtures;

/// <summary>
/// A CDI spec directory for end-to-end tests, with one device, <see cref="QualifiedName"/>, that brings a real character
/// device (a node made with mknod with /dev/null's numbers, under another name), an environment variable and a read-only
/// bind mount of a directory holding one file. Point hulld at it with <see cref="ConfigToml"/>; ask for the device through
/// CRI's CDI_devices or through <see cref="Annotations"/>. Needs root (mknod). Everything is removed on dispose.
/// </summary>
public sealed class CdiFixture : IDisposable
{
    public const string Kind = "hull.test/e2e";
    public const string DeviceName = "null0";
    public const string QualifiedName = Kind + "=" + DeviceName;
    /// <summary>A well-formed name no spec defines (CreateContainer must fail with NotFound and leave nothing behind).</summary>
    public const string UnknownDevice = Kind + "=missing";

    /// <summary>Where the device node appears in the container.</summary>
    public const string ContainerDevicePath = "/dev/hull-cdi-null";
    public const string EnvName = "HULL_CDI_DEVICE";
    public const string EnvValue = DeviceName;
    public const string MountContainerPath = "/mnt/hull-cdi";
    public const string MountedFileName = "hello.txt";
    public const string MountedFileContent = "mounted by CDI\n";
    /// <summary>The annotation key a device plugin would use (cdi.k8s.io/&lt;plugin&gt;_&lt;device id&gt;).</summary>
    public const string AnnotationKey = CdiAnnotations.Prefix + "hull-e2e_null0";

    private CdiFixture(string root)
    {
        Root = root;
        SpecDirectory = Path.Combine(root, "cdi");
        HostDevicePath = Path.Combine(root, "dev", "hull-cdi-null");
        MountHostDirectory = Path.Combine(root, "mount");
        SpecPath = Path.Combine(SpecDirectory, "hull-e2e.yaml");
    }

    public string Root { get; }
    /// <summary>The directory to list in <c>cdi_spec_dirs</c>.</summary>
    public string SpecDirectory { get; }
    public string SpecPath { get; }
    /// <summary>The mknod'ed node on the host (character device, /dev/null's major and minor).</summary>
    public string HostDevicePath { get; }
    public string MountHostDirectory { get; }
    public uint Major { get; private set; }
    public uint Minor { get; private set; }

    /// <summary>The container annotations that ask for the device the way older device plugins do.</summary>
    public IReadOnlyDictionary<string, string> Annotations { get; } = new Dictionary<string, string> { [AnnotationKey] = QualifiedName };

    /// <summary>The runtime plugin section that makes hulld read this fixture's specs (and only them).</summary>
    public string ConfigToml => $"""
        [plugins.'io.containerd.cri.v1.runtime']
          enable_cdi = true
          cdi_spec_dirs = ['{SpecDirectory}']
        """;

    /// <summary>Makes the node, the mounted directory and the spec under a new temporary directory.</summary>
    public static CdiFixture Create()
    {
        var fixture = new CdiFixture(Directory.CreateTempSubdirectory("hull-e2e-cdi-").FullName);
        try
        {
            fixture.Populate();
            return fixture;
        }
        catch
        {
            fixture.Dispose();
            throw;
        }
    }

    private void Populate()
    {
        var devNull = FileStatus.Get("/dev/null");
        (Major, Minor) = (devNull.RdevMajor, devNull.RdevMinor);
        Directory.CreateDirectory(Path.GetDirectoryName(HostDevicePath)!);
        var readWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
        FileNodes.CreateCharacterDevice(HostDevicePath, readWrite, Major, Minor);
        File.SetUnixFileMode(HostDevicePath, readWrite); // mknod applied the umask

        Directory.CreateDirectory(MountHostDirectory);
        File.WriteAllText(Path.Combine(MountHostDirectory, MountedFileName), MountedFileContent);

        Directory.CreateDirectory(SpecDirectory);
        File.WriteAllText(SpecPath, $"""
            cdiVersion: "0.5.0"
            kind: {Kind}
            containerEdits:
              mounts:
                - hostPath: {MountHostDirectory}
                  containerPath: {MountContainerPath}
                  options: [ro, nosuid, nodev, rbind]
            devices:
              - name: {DeviceName}
                containerEdits:
                  env: ["{EnvName}={EnvValue}"]
                  deviceNodes:
                    - path: {ContainerDevicePath}
                      hostPath: {HostDevicePath}
            """);

        // The fixture must be a spec hulld accepts; fail here rather than in a container test.
        var snapshot = CdiSnapshot.Load([SpecDirectory]);
        if (snapshot.Errors.Count > 0) throw new InvalidOperationException($"the CDI fixture spec is invalid: {string.Join("; ", snapshot.Errors)}");
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
