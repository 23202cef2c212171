using System.Xml.Linq;

namespace Osprey.Protocol.Tests;

/// <summary>Project references point one way: Protocol ← Storage ← Metadata ← Controller ← Broker ← Cli (the client below the broker).</summary>
public class ArchitectureTests
{
    // Which src projects each src project may reference.
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Osprey.Protocol.Generator"] = [],
        ["Osprey.Protocol"] = ["Osprey.Protocol.Generator"],
        ["Osprey.Storage"] = ["Osprey.Protocol"],
        ["Osprey.Metadata"] = ["Osprey.Protocol", "Osprey.Storage"],
        ["Osprey.Controller"] = ["Osprey.Protocol", "Osprey.Storage", "Osprey.Metadata"],
        ["Osprey.Quorum"] = ["Osprey.Protocol", "Osprey.Storage", "Osprey.Metadata"],
        ["Osprey.Broker"] = ["Osprey.Protocol", "Osprey.Storage", "Osprey.Metadata", "Osprey.Controller", "Osprey.Quorum", "Osprey.Client"],
        ["Osprey.Client"] = ["Osprey.Protocol"],
        ["Osprey.LoadKit"] = [],
        ["Osprey.Cli"] = ["Osprey.Protocol", "Osprey.Storage", "Osprey.Metadata", "Osprey.Controller", "Osprey.Quorum", "Osprey.Broker", "Osprey.Client", "Osprey.LoadKit"],
    };

    [Fact]
    public void SourceProjectsReferenceOnlyLowerLayers()
    {
        var src = Path.Combine(RepositoryRoot(), "src");
        var projects = Directory.GetFiles(src, "*.csproj", SearchOption.AllDirectories);
        Assert.NotEmpty(projects);
        foreach (var project in projects)
        {
            var name = Path.GetFileNameWithoutExtension(project);
            Assert.True(Allowed.TryGetValue(name, out var allowed), $"{name} has no place in the layering table");
            var references = XDocument.Load(project).Descendants("ProjectReference")
                .Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value))
                .ToList();
            var wrong = references.Except(allowed!).ToList();
            Assert.True(wrong.Count == 0, $"{name} must not reference {string.Join(", ", wrong)}");
        }
    }

    [Fact]
    public void EveryApiHasARequestAndAResponseWithTheSameVersions()
    {
        foreach (var api in ApiMessages.All)
        {
            var request = ApiMessages.CreateRequest(api.Key);
            var response = ApiMessages.CreateResponse(api.Key);
            Assert.True(request.IsRequest);
            Assert.False(response.IsRequest);
            Assert.Equal(api.Key, request.ApiKey);
            Assert.Equal(api.Key, response.ApiKey);
            Assert.Equal((api.LowestVersion, api.HighestVersion), (request.LowestSupportedVersion, request.HighestSupportedVersion));
            Assert.Equal((api.LowestVersion, api.HighestVersion), (response.LowestSupportedVersion, response.HighestSupportedVersion));
        }

        Assert.True(ApiMessages.All.Count(a => a.BrokerListener) >= 65);
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Osprey.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
