using System.CommandLine;
using System.Text.Json;
using Hull.Api.Admin;
using Grpc.Core;

namespace Hullctl;

/// <summary>
/// <c>hullctl images pull|push|import|export|tag|ls|rm</c>. Transfers go through hulld's admin API (pull
/// and push stream per-blob progress); ls and rm use CRI's ImageService, so they show and do exactly
/// what the kubelet sees and does.
/// </summary>
internal static class ImagesCommands
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static Command Create(Option<string> address)
    {
        var images = new Command("images", "pull, push, import, export, tag, list and remove images");
        images.Aliases.Add("image");
        images.Subcommands.Add(Pull(address));
        images.Subcommands.Add(Push(address));
        images.Subcommands.Add(Import(address));
        images.Subcommands.Add(Export(address));
        images.Subcommands.Add(Tag(address));
        images.Subcommands.Add(List(address));
        images.Subcommands.Add(Remove(address));
        return images;
    }

    private static Option<string?> CredsOption() => new("--creds", "-u")
    {
        Description = "registry credentials USER[:PASSWORD] (the password is read from $HULL_REGISTRY_PASSWORD when omitted)",
    };

    private static Option<string> ProgressOption()
    {
        var option = new Option<string>("--progress")
        {
            Description = "auto (bars on a terminal, lines otherwise), tty, plain or none",
            DefaultValueFactory = _ => "auto",
        };
        option.AcceptOnlyFromAmong("auto", "tty", "plain", "none");
        return option;
    }

    private static Command Pull(Option<string> address)
    {
        var reference = new Argument<string>("reference") { Description = "image to pull, e.g. registry.example.com/app:1.0 or busybox" };
        var creds = CredsOption();
        var progress = ProgressOption();
        var command = new Command("pull", "pull an image from its registry, showing per-layer progress") { reference, creds, progress };
        command.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, async client =>
        {
            var request = new AdminPullRequest { Image = parse.GetValue(reference)!, Credentials = Credentials(parse.GetValue(creds)) };
            var final = await TransferDisplay.RunAsync(client.PullImageAsync(request, ct), parse.GetValue(progress)!, Console.Out);
            Console.WriteLine($"Pulled {final.Image}");
            Console.WriteLine($"Image ID: {final.ImageId}");
            return 0;
        }));
        return command;
    }

    private static Command Push(Option<string> address)
    {
        var image = new Argument<string>("image") { Description = "image to push: a name or an image ID" };
        var target = new Argument<string?>("target")
        {
            Description = "where to push it (default: the image's name)", Arity = ArgumentArity.ZeroOrOne,
        };
        var creds = CredsOption();
        var progress = ProgressOption();
        var command = new Command("push", "push an image to a registry, showing per-layer progress") { image, target, creds, progress };
        command.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, async client =>
        {
            var request = new AdminPushRequest
            {
                Image = parse.GetValue(image)!, Target = parse.GetValue(target) ?? "", Credentials = Credentials(parse.GetValue(creds)),
            };
            var final = await TransferDisplay.RunAsync(client.PushImageAsync(request, ct), parse.GetValue(progress)!, Console.Out);
            Console.WriteLine($"Pushed {final.Image}@{final.PushedDigest}");
            Console.WriteLine($"Image ID: {final.ImageId}");
            return 0;
        }));
        return command;
    }

    private static Command Import(Option<string> address)
    {
        var path = new Argument<string>("archive") { Description = "OCI image layout tar (optionally gzipped) on the node" };
        var name = new Option<string?>("--name") { Description = "record the archive's image under this name instead of the names it carries" };
        var command = new Command("import", "import images from an OCI archive (hulld reads the file on the node)") { path, name };
        command.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, async client =>
        {
            var response = await client.ImportImageAsync(new ImportImageRequest
            {
                Path = Path.GetFullPath(parse.GetValue(path)!), Name = parse.GetValue(name) ?? "",
            }, ct);
            foreach (var image in response.Images) Console.WriteLine($"Imported {image.Name} {image.Id}");
            return 0;
        }));
        return command;
    }

    private static Command Export(Option<string> address)
    {
        var path = new Argument<string>("archive") { Description = "tar file to write (by hulld, on the node)" };
        var images = new Argument<string[]>("image") { Description = "images to export: names or IDs", Arity = ArgumentArity.OneOrMore };
        var command = new Command("export", "export images as an OCI archive (hulld writes the file on the node)") { path, images };
        command.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, async client =>
        {
            var request = new ExportImageRequest { Path = Path.GetFullPath(parse.GetValue(path)!) };
            request.Images.AddRange(parse.GetValue(images)!);
            var response = await client.ExportImageAsync(request, ct);
            Console.WriteLine($"Exported {request.Images.Count} image(s) to {request.Path} ({response.Blobs} blobs, {TransferDisplay.Size(response.Size)})");
            return 0;
        }));
        return command;
    }

    private static Command Tag(Option<string> address)
    {
        var source = new Argument<string>("source") { Description = "existing image: a name or an image ID" };
        var target = new Argument<string>("target") { Description = "new name" };
        var command = new Command("tag", "give an image another name") { source, target };
        command.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, async client =>
        {
            var response = await client.TagImageAsync(parse.GetValue(source)!, parse.GetValue(target)!, ct);
            Console.WriteLine($"Tagged {response.Name} {response.Id}");
            return 0;
        }));
        return command;
    }

    private static Command List(Option<string> address)
    {
        var format = new Option<string>("--format", "-o") { Description = "table or json", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");
        var noTrunc = new Option<bool>("--no-trunc") { Description = "show full image IDs" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "only image IDs" };
        var command = new Command("ls", "list images (as the kubelet sees them through CRI)") { format, noTrunc, quiet };
        command.Aliases.Add("list");
        command.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, async client =>
        {
            var images = (await client.ListImagesAsync(ct)).Images;
            if (parse.GetValue(format) == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(images.Select(i => new
                {
                    id = i.Id, repoTags = i.RepoTags, repoDigests = i.RepoDigests, size = (long)i.Size, pinned = i.Pinned,
                }), Json));
                return 0;
            }
            string Id(string id) => parse.GetValue(noTrunc) ? id : id[(id.IndexOf(':') + 1)..][..Math.Min(12, id.Length - id.IndexOf(':') - 1)];
            if (parse.GetValue(quiet))
            {
                foreach (var image in images) Console.WriteLine(Id(image.Id));
                return 0;
            }
            var rows = images.SelectMany(i => (i.RepoTags.Count > 0 ? i.RepoTags : i.RepoDigests.Count > 0 ? i.RepoDigests : ["<none>"])
                    .Select(r => (Ref: r, Image: i)))
                .OrderBy(r => r.Ref, StringComparer.Ordinal);
            var table = new TextTable("REF", "IMAGE ID", "SIZE", "PINNED");
            foreach (var (reference, image) in rows)
                table.Add(reference, Id(image.Id), TransferDisplay.Size((long)image.Size), image.Pinned ? "true" : "false");
            table.WriteTo(Console.Out);
            return 0;
        }));
        return command;
    }

    private static Command Remove(Option<string> address)
    {
        var images = new Argument<string[]>("image") { Description = "images to remove: names or IDs", Arity = ArgumentArity.OneOrMore };
        var command = new Command("rm", "remove images with all their names, as the kubelet does") { images };
        command.Aliases.Add("remove");
        command.SetAction((parse, ct) => Cli.RunAsync(parse.GetValue(address)!, async client =>
        {
            int exit = 0;
            foreach (var spec in parse.GetValue(images)!)
            {
                var status = await client.ImageStatusAsync(spec, ct);
                if (status.Image is null)
                {
                    Console.Error.WriteLine($"hullctl: image \"{spec}\" not found");
                    exit = 1;
                    continue;
                }
                await client.RemoveImageAsync(spec, ct);
                Console.WriteLine($"Removed {spec} {status.Image.Id}");
            }
            return exit;
        }));
        return command;
    }

    private static RegistryAuth? Credentials(string? creds)
    {
        if (string.IsNullOrEmpty(creds)) return null;
        int colon = creds.IndexOf(':');
        return colon < 0
            ? new RegistryAuth { Username = creds, Password = Environment.GetEnvironmentVariable("HULL_REGISTRY_PASSWORD") ?? "" }
            : new RegistryAuth { Username = creds[..colon], Password = creds[(colon + 1)..] };
    }
}

/// <summary>Runs one command against hulld and turns failures into a message on stderr and an exit code.</summary>
internal static class Cli
{
    public static async Task<int> RunAsync(string address, Func<HullClient, Task<int>> action)
    {
        using var client = new HullClient(address);
        try
        {
            return await action(client);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
            Console.Error.WriteLine("hullctl: cancelled"); // Ctrl+C
            return 130;
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine(e.StatusCode == StatusCode.Unavailable
                ? $"hullctl: cannot reach hulld at {address}: {ConnectionError(e)}"
                : $"hullctl: {e.StatusCode}: {e.Status.Detail}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("hullctl: cancelled");
            return 130;
        }
    }

    /// <summary>What went wrong connecting: the socket's own error, not the client library's wrapping of it.</summary>
    private static string ConnectionError(RpcException e)
    {
        for (var inner = e.Status.DebugException; inner is not null; inner = inner.InnerException)
            if (inner is IOException io) return io.Message;
        return e.Status.Detail;
    }
}
